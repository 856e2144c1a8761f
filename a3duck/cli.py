"""The `a3duck` command. Each subcommand is a module of ``a3duck.commands`` exposing
``add_arguments(parser)`` and ``run(args) -> int`` (argparse plus a thin call into the library);
modules are imported only when their command runs, so `a3duck --help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys

from a3duck.entry import VERBOSE_HELP, invoke

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare-model": ("a3duck.commands.prepare_model",
                      "materialise the embedded SmolLM2 model; prints its path"),
    "train": ("a3duck.commands.train", "train an IA3 adapter from a YAML recipe plus overrides"),
    "compare": ("a3duck.commands.compare",
                "answer held-out prompts with base and adapter side by side"),
    "merge": ("a3duck.commands.merge", "fold an IA3 adapter into its base; write a standalone model"),
    "mix": ("a3duck.commands.mix", "combine IA3 adapters of one base into a new adapter"),
    "eval": ("a3duck.commands.eval", "Open LLM Leaderboard v1 suite for base and/or adapter"),
    "check-contamination": ("a3duck.commands.check_contamination",
                            "find training rows that duplicate benchmark questions"),
    "card": ("a3duck.commands.card", "render the model card (README.md) into an adapter folder"),
    "push": ("a3duck.commands.push", "stage, check and upload an adapter folder to the Hub"),
    "serve": ("a3duck.commands.serve", "start the Gradio Space locally"),
    "space": ("a3duck.commands.space", "stage, check and push the Gradio app as a Hub Space"),
    "chat": ("a3duck.commands.chat", "chat with base + adapter in the terminal"),
    "inspect": ("a3duck.commands.inspect", "summarise an adapter and plot its learned IA3 vectors"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="a3duck",
        description="(IA)^3 fine-tuning of Llama-family models: train, evaluate, publish, demo.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    at = next((i for i, arg in enumerate(argv) if arg in COMMANDS), None)
    if at is None:
        parser.parse_args(argv)  # -h prints help and exits 0; a bad command exits 2
        parser.print_help()
        return 2 if argv else 0
    top = parser.parse_args(argv[: at + 1])  # only -v may come before the command
    module_name, help_text = COMMANDS[top.command]
    module = importlib.import_module(module_name)
    return invoke(module, argv[at + 1:], prog=f"a3duck {top.command}", description=help_text,
                  verbose=top.verbose)


if __name__ == "__main__":
    raise SystemExit(main())
