"""`a3duck mix`: combine IA3 adapters of one base into a new adapter (logic: a3duck.mix)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from a3duck.mix import MODES

    parser.add_argument("--adapter", action="append", required=True, metavar="DIR_OR_HUB_ID[:W]",
                        help="an adapter to mix, with an optional weight (repeat the flag)")
    parser.add_argument("--mode", choices=MODES, default=MODES[0],
                        help="multiplicative: product of scales**weight (missing weight = 1); "
                        "linear: PEFT's weighted sum (missing weights = 1/N)")
    parser.add_argument("--output-dir", required=True, help="folder for the mixed adapter")


def run(args: argparse.Namespace) -> int:
    from a3duck.mix import mix_adapters
    from a3duck.publish.card import write_local_card

    print(mix_adapters(args.adapter, args.output_dir, mode=args.mode,
                       write_card=write_local_card))
    return 0
