"""`a3duck merge`: fold an IA3 adapter into its base and write a standalone model."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--adapter", required=True,
                        help="adapter folder or Hub id (e.g. out/adapter, DopeorNope/A3_duck)")
    parser.add_argument("--base-model", help="base model id/folder (default: the adapter's base)")
    parser.add_argument("--output-dir", required=True, help="folder for the merged model")


def run(args: argparse.Namespace) -> int:
    from a3duck.models import merge_adapter

    print(merge_adapter(args.adapter, args.output_dir, base=args.base_model))
    return 0
