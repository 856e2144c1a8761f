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
    from a3duck import logs

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", default=verbose, help=VERBOSE_HELP)
    module.add_arguments(parser)
    parser.set_defaults(**(defaults or {}))
    args = parser.parse_args(argv)
    logs.setup(args.verbose)
    return run_command(module, args)


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
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was left in place", file=sys.stderr)
        return 130


def _print_error(message: str) -> None:
    """Print on a line of its own even while a library's progress bar is drawn on stderr."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)
