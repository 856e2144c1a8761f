"""`a3duck check-contamination`: training rows that duplicate benchmark questions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from a3duck.evaluation.benchmarks import LAYOUT
from a3duck.evaluation.contamination import DEFAULT_THRESHOLD, SHINGLE
from a3duck.limits import flag


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="training data: .json/.jsonl/.parquet/.csv file or Hub dataset id")
    parser.add_argument("--data-dir", required=True, type=Path,
                        help="benchmark files in the `a3duck eval --data-dir` layout "
                             f"({LAYOUT})")
    parser.add_argument("--threshold", type=flag(low=0, above=True, high=1, integer=False), default=DEFAULT_THRESHOLD,
                        help="near-duplicate threshold: fraction of a benchmark item's character "
                             f"{SHINGLE}-grams found in a training prompt (default "
                             f"{DEFAULT_THRESHOLD})")
    parser.add_argument("--output", type=Path,
                        help="write the JSON report here (for the model card)")
    parser.add_argument("--write-filtered", type=Path, metavar="FILE",
                        help="write the training rows without flagged or invalid rows "
                             "(.jsonl or .json)")


def run(args: argparse.Namespace) -> int:
    from a3duck.evaluation.contamination import check, format_table, write_filtered
    from a3duck.files import atomic_write_text

    report, rows, texts, flagged = check(args.data, args.data_dir, args.threshold)
    print(format_table(report))
    if args.output:
        atomic_write_text(args.output, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"report: {args.output}")
    if args.write_filtered:
        kept = write_filtered(rows, flagged, texts, args.write_filtered)
        print(f"filtered data: {args.write_filtered} ({kept} rows)")
    return 0
