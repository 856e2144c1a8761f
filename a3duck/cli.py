"""The `a3duck` command. Each subcommand lives in the module of its pipeline stage, which
exposes ``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when their
command runs, so `a3duck --help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare-model": ("a3duck.commands", "materialise the embedded SmolLM2 model; prints its path"),
    "train": ("a3duck.train", "train an IA3 adapter from a YAML recipe plus overrides"),
    "compare": ("a3duck.commands", "answer held-out prompts with base and adapter side by side"),
    "merge": ("a3duck.commands", "fold an IA3 adapter into its base; write a standalone model"),
    "eval": ("a3duck.evaluation.cli", "Open LLM Leaderboard v1 suite for base and/or adapter"),
    "check-contamination": ("a3duck.evaluation.contamination",
                            "find training rows that duplicate benchmark questions"),
    "card": ("a3duck.publish.card", "render the model card (README.md) into an adapter folder"),
    "push": ("a3duck.publish.hub", "stage, check and upload an adapter folder to the Hub"),
    "serve": ("a3duck.space.ui", "start the Gradio Space locally"),
    "space": ("a3duck.commands.space", "stage, check and push the Gradio app as a Hub Space"),
    "chat": ("a3duck.commands", "chat with base + adapter in the terminal"),
    "inspect": ("a3duck.inspect", "summarise an adapter and plot its learned IA3 vectors"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="a3duck",
        description="(IA)^3 fine-tuning of Llama-family models: train, evaluate, publish, demo.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug-level logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    top, rest = parser.parse_known_args(argv[:1] if argv and argv[0] in COMMANDS else argv)
    if top.command is None:
        parser.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    logging.basicConfig(
        level=logging.DEBUG if "-v" in rest or "--verbose" in rest else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
    )
    module_name, help_text = COMMANDS[top.command]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("a3duck"):
            print(f"a3duck {top.command}: not available in this version ({exc.name})",
                  file=sys.stderr)
            return 2
        raise
    sub = argparse.ArgumentParser(prog=f"a3duck {top.command}", description=help_text)
    sub.add_argument("-v", "--verbose", action="store_true", help="debug-level logging")
    module.add_arguments(sub, top.command) if _takes_command(module) else module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    args.command = top.command
    return _run(module, args)


def _takes_command(module) -> bool:
    import inspect

    return len(inspect.signature(module.add_arguments).parameters) == 2


def _run(module, args) -> int:
    """Run a command; known user errors print one clear line instead of a traceback."""
    from a3duck.errors import USER_ERRORS

    try:
        return int(module.run(args) or 0)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was left in place", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
