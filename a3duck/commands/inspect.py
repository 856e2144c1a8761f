"""`a3duck inspect`: what an IA3 adapter learned, as numbers and plots."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("adapter", help="adapter folder or Hub id")
    parser.add_argument("--output-dir", help="where to write the PNGs and inspect.json "
                        "(default: ADAPTER/plots for a local adapter)")


def run(args: argparse.Namespace) -> int:
    from a3duck import adapter_folder
    from a3duck.inspection import format_summary, inspect_adapter

    adapter = adapter_folder.resolve(args.adapter)
    out = Path(args.output_dir) if args.output_dir else adapter / adapter_folder.PLOTS
    summary = inspect_adapter(adapter, out)
    print(format_summary(summary))
    print(f"\nwrote {', '.join(summary['plots'])} to {out}")
    return 0
