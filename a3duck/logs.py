"""Terminal output policy, set in one place by the `a3duck` command and by app.py.

Quiet by default: a3duck's own log lines (INFO), progress bars and results; the libraries'
INFO lines, warnings and bars (transformers, datasets, PEFT, lm-eval, HTTP clients) only with
-v, through the libraries' own verbosity controls and the warnings filters.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import warnings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers of libraries whose INFO lines are noise to a user (lm-eval's "Building contexts for
# ..." per task, huggingface_hub's HTTP client lines).
LIBRARY_LOGGERS = ("lm_eval", "httpx", "httpcore", "urllib3", "filelock", "matplotlib", "peft")


_state = {"verbose": True}  # until setup() runs (library use): show everything


def setup(verbose: bool = False) -> None:
    """Configure logging and warnings: a3duck at INFO (DEBUG with -v), libraries quiet unless -v."""
    _state["verbose"] = verbose
    from a3duck import progress

    progress.install()  # bars drawn on any terminal, one line per frame in a log
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


@contextlib.contextmanager
def without_bare_bars():
    """Unless -v: progress bars without a description that libraries draw on stderr inside the
    block are dropped (lm-eval draws one per task while it builds requests: 57 for MMLU, per
    model). Bars with a description (a3duck's, lm-eval's scoring bar) and all other text pass."""
    if _state["verbose"]:
        yield
        return
    with contextlib.redirect_stderr(_BareBarFilter(sys.stderr)):
        yield


class _BareBarFilter(io.TextIOBase):
    """A stderr that drops tqdm frames starting with the percentage or count (no description)
    and the line end tqdm writes after such a bar's last frame; passes everything else."""

    BARE = re.compile(r"\r?\s*(\d+%\||\d+it \[)")

    def __init__(self, target):
        self.target = target
        self.after_bar = False

    def write(self, text: str) -> int:
        if not text:
            return 0
        if self.BARE.match(text) or (self.after_bar and text == "\n"):
            self.after_bar = text != "\n"
            return len(text)
        self.after_bar = False
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    @property
    def encoding(self):
        return getattr(self.target, "encoding", "utf-8")
