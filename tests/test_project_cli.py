"""The command layer: one table, one convention, -v in either position, quiet libraries."""

import argparse
import importlib
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from a3duck.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def restore_logging():
    """main() sets logger levels for the process; put them back for the other tests."""
    names = ["", "a3duck", "lm_eval", "transformers", "datasets", "httpx"]
    levels = {n: logging.getLogger(n).level for n in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_every_command_is_a_module_with_add_arguments_and_run():
    assert set(COMMANDS) == {"prepare-model", "train", "compare", "merge", "mix", "eval", "chat", "export",
                             "check-contamination", "card", "push", "serve", "space", "inspect"}
    for name, (module_name, help_text) in COMMANDS.items():
        assert module_name == "a3duck.commands." + name.replace("-", "_") and help_text
        module = importlib.import_module(module_name)
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        assert callable(module.run)


@pytest.mark.parametrize("argv", [["-v", "inspect", "MISSING"], ["inspect", "MISSING", "-v"],
                                  ["--verbose", "inspect", "MISSING"]])
def test_verbose_before_or_after_the_command_logs_debug_and_shows_traceback(argv, tmp_path,
                                                                            capsys):
    argv = [str(tmp_path / "nope") if a == "MISSING" else a for a in argv]
    assert main(argv) == 2
    assert logging.getLogger("a3duck").getEffectiveLevel() == logging.DEBUG
    err = capsys.readouterr().err
    assert "Traceback" in err and "error: adapter folder not found" in err


def test_default_is_info_without_traceback(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope")]) == 2
    assert logging.getLogger("a3duck").getEffectiveLevel() == logging.INFO
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("error: adapter folder not found")


def test_quiet_by_default_silences_library_noise_only():
    from a3duck import logs

    with warnings.catch_warnings(record=True) as seen:
        logs.setup(verbose=False)
        warnings.warn("library noise", FutureWarning, stacklevel=1)  # attributed to tests/
        import transformers.utils.logging as tl

        assert tl.get_verbosity() == logging.ERROR and not tl.is_progress_bar_enabled()
        assert logging.getLogger("lm_eval.api.task").getEffectiveLevel() == logging.ERROR
        assert logging.getLogger("a3duck.train").getEffectiveLevel() == logging.INFO
    assert seen == []
    with warnings.catch_warnings(record=True) as seen:
        logs.setup(verbose=True)
        warnings.simplefilter("always")
        warnings.warn("library noise", FutureWarning, stacklevel=1)
        assert logging.getLogger("lm_eval.api.task").getEffectiveLevel() == logging.INFO
        assert tl.is_progress_bar_enabled()
    assert [str(w.message) for w in seen] == ["library noise"]


def test_help_and_unknown_command():
    assert main([]) == 0
    with pytest.raises(SystemExit) as exc:
        main(["nonsense"])
    assert exc.value.code == 2


@pytest.mark.slow  # spawns a subprocess
def test_entry_points_still_work():
    for script in ("app.py", "push_to_hub.py"):
        out = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True,
                             text=True, check=False)
        assert out.returncode == 0 and "-v, --verbose" in out.stdout, out.stderr[-2000:]


def test_bare_library_bars_are_dropped_in_quiet_mode(monkeypatch, capsys):
    """lm-eval draws a bar without a description per task while it builds requests (57 for MMLU,
    per model): quiet mode drops those; described bars and plain text pass; -v shows all."""
    from tqdm import tqdm

    from a3duck import logs

    def draw():
        for _ in tqdm(range(3)):  # like lm-eval's build_all_requests: no desc, sys.stderr
            pass
        for _ in tqdm(range(2), desc="Running loglikelihood requests"):
            pass
        for _ in tqdm(iter(range(2))):  # no total: "2it [...]"
            pass
        print("a plain line", file=sys.stderr)

    monkeypatch.setitem(logs._state, "verbose", False)
    with logs.without_bare_bars():
        draw()
    quiet = capsys.readouterr().err
    assert "Running loglikelihood requests" in quiet and "a plain line\n" in quiet
    # "2it [" not "2it": the kept bar's rate (e.g. "72944.42it/s") may end in a 2
    assert "3/3 [" not in quiet and "2it [" not in quiet
    assert not any(line.strip() == "" for line in quiet.split("\n")[:-1])  # no blank lines left
    monkeypatch.setitem(logs._state, "verbose", True)
    with logs.without_bare_bars():
        draw()
    verbose = capsys.readouterr().err
    assert "3/3 [" in verbose and "2it [" in verbose
