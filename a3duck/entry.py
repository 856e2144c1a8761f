"""How every entry point (the `a3duck` CLI, app.py) parses and runs a command module: logging
set up once (:mod:`a3duck.logs`), user errors printed as one line without a traceback (exit 2).

A command module has ``add_arguments(parser)`` and ``run(args) -> int``. This lives in the core so
that the Space's app.py can run its command without importing :mod:`a3duck.cli`.
"""

from __future__ import annotations

import argparse
import sys
import traceback

VERBOSE_HELP = "debug-level logging, library warnings and tracebacks"


def invoke(module, argv: list[str], *, prog: str, description: str,
           verbose: bool = False, defaults: dict | None = None) -> int:
    """Parse ``argv`` for a command module and run it the way every a3duck entry point does:
    logging set up once (a3duck.logs), user errors printed without a traceback (exit 2).
    ``defaults`` adds attributes that no flag sets (app.py's Space folder)."""
    from a3duck import logs, scratch

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", default=verbose, help=VERBOSE_HELP)
    module.add_arguments(parser)
    parser.set_defaults(**(defaults or {}))
    args = parser.parse_args(argv)
    empty = empty_argument(argv)
    if empty:  # "" would mean "here" as a path, or nothing as a name
        parser.error(f"{empty} is empty: give a file, folder, Hub id or value")
    logs.setup(args.verbose)
    scratch.sweep()  # what runs killed with kill -9 left in the temporary folder
    scratch.stop_cleanly_on_sigterm()  # a stopped run removes its own temporary folders
    return run_command(module, args)


def empty_argument(argv: list[str]) -> str | None:
    """The first command-line value that is empty or blank (``--output-dir ""``,
    ``--data=``, a blank positional), described for the error message; None if there is none."""
    for i, token in enumerate(argv):
        option, eq, value = token.partition("=")
        if token.startswith("--") and eq and not value.strip():
            return f"argument {option}"
        if not token.strip():
            before = argv[i - 1] if i else ""
            return f"argument {before}" if before.startswith("-") else "a positional argument"
    return None


def run_command(module, args: argparse.Namespace) -> int:
    """Run a command; known user errors print one clear message instead of a traceback."""
    from a3duck.errors import USER_ERRORS

    try:
        return int(module.run(args) or 0)
    except USER_ERRORS as exc:
        if getattr(args, "verbose", False):
            traceback.print_exc()
        _print_error(f"error: {exc}")
        return 2
    except Exception as exc:  # disk full, read-only, ...: the user's to fix (a3duck.oserrors)
        from a3duck.oserrors import as_os_error, explain

        os_error = as_os_error(exc)
        if os_error is None:
            raise
        if getattr(args, "verbose", False):
            traceback.print_exc()
        _print_error(f"error: {explain(os_error)}")
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was left in place", file=sys.stderr)
        return 130


def _print_error(message: str) -> None:
    """Print on a line of its own even while a library's progress bar is drawn on stderr."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)
