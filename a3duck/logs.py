"""Terminal output policy, set in one place by the `a3duck` command and by app.py.

Quiet by default: a3duck's own log lines (INFO), progress bars and results; the libraries'
INFO lines, warnings and bars (transformers, datasets, PEFT, lm-eval, HTTP clients) only with
-v, through the libraries' own verbosity controls and the warnings filters.
"""

from __future__ import annotations

import logging
import sys
import warnings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers of libraries whose INFO lines are noise to a user (lm-eval's "Building contexts for
# ..." per task, huggingface_hub's HTTP client lines).
LIBRARY_LOGGERS = ("lm_eval", "httpx", "httpcore", "urllib3", "filelock", "matplotlib", "peft")


def setup(verbose: bool = False) -> None:
    """Configure logging and warnings: a3duck at INFO (DEBUG with -v), libraries quiet unless -v."""
    root = logging.getLogger()
    if not root.handlers:
        handler = BarSafeHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("a3duck").setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in LIBRARY_LOGGERS:  # -v: they inherit the root's INFO
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.ERROR)
    # transformers' and datasets' INFO is a page per model load: -v restores their default.
    _library_verbosity(logging.WARNING if verbose else logging.ERROR)
    if not verbose:  # library warnings (FutureWarning, PEFT's "Could not find a config file")
        warnings.simplefilter("ignore")
        warnings.filterwarnings("default", category=UserWarning, module=r"a3duck(\.|$)")


class BarSafeHandler(logging.StreamHandler):
    """Writes each line through tqdm, so it lands above a running progress bar, not on its line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001 - logging must never raise; report it the stdlib way
            self.handleError(record)


def _library_verbosity(level: int) -> None:
    """transformers' and datasets' own switches (they keep their own logger levels): their
    log lines, and their progress bars (weight loading/saving, dataset maps) unless -v. Hub
    downloads keep their bars, and so does training."""
    import datasets
    import transformers.utils.logging as transformers_logging

    transformers_logging.set_verbosity(level)
    datasets.logging.set_verbosity(level)
    if level > logging.WARNING:
        transformers_logging.disable_progress_bar()
        datasets.disable_progress_bars()
    else:
        transformers_logging.enable_progress_bar()
        datasets.enable_progress_bars()
