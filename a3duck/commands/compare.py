"""`a3duck compare`: greedy answers of base and adapter on held-out rows, with scores."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from a3duck.limits import MAX_COUNT, flag


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--adapter", required=True,
                        help="adapter folder or Hub id (e.g. out/adapter, DopeorNope/A3_duck)")
    parser.add_argument("--base-model", help="base model id/folder (default: the adapter's base)")
    parser.add_argument("--data", default="data/demo/eval.jsonl",
                        help="held-out rows (same schemas as training data)")
    parser.add_argument("--limit", type=flag(low=1, high=MAX_COUNT), help="only the first N rows")
    parser.add_argument("--output", help="write per-row results and scores as JSON here")
    parser.add_argument("--max-new-tokens", type=flag(low=1, high=MAX_COUNT), default=48,
                        help="tokens to generate per answer")


def run(args: argparse.Namespace) -> int:
    from a3duck.compare import compare, format_report
    from a3duck.files import atomic_write_text

    result = compare(args.adapter, args.data, base=args.base_model, limit=args.limit,
                     max_new_tokens=args.max_new_tokens)
    print(format_report(result))
    if args.output:
        atomic_write_text(Path(args.output), json.dumps(result, indent=2))
    return 0
