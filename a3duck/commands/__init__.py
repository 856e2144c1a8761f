"""Small subcommands: prepare-model, merge, compare (base vs adapter on held-out prompts), chat."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    if command == "prepare-model":
        parser.add_argument("--force", action="store_true", help="rebuild even if present")
        return
    parser.add_argument("--adapter", required=command != "chat",
                        help="adapter folder or Hub id (e.g. out/adapter, DopeorNope/A3_duck)")
    parser.add_argument("--base-model", help="base model id/folder (default: the adapter's base)")
    if command == "merge":
        parser.add_argument("--output-dir", required=True, help="folder for the merged model")
    if command == "compare":
        parser.add_argument("--data", default="data/demo/eval.jsonl",
                            help="held-out rows (same schemas as training data)")
        parser.add_argument("--limit", type=int, help="only the first N rows")
        parser.add_argument("--output", help="write per-row results and scores as JSON here")
    if command in ("compare", "chat"):
        parser.add_argument("--max-new-tokens", type=int, default=48,
                            help="tokens to generate per answer")


def run(args: argparse.Namespace) -> int:
    handlers = {"prepare-model": _prepare, "merge": _merge, "compare": _compare, "chat": _chat}
    return handlers[args.command](args)


def _prepare(args) -> int:
    from a3duck import embedded

    print(embedded.prepare(force=args.force))
    return 0


def _merge(args) -> int:
    from a3duck.models import merge_adapter

    out = merge_adapter(args.adapter, args.output_dir, base=args.base_model)
    print(out)
    return 0


def _compare(args) -> int:
    """Greedy answers of base and adapter on held-out rows, with exact-match and format scores."""
    from a3duck.compare import compare, format_report

    result = compare(args.adapter, args.data, base=args.base_model, limit=args.limit,
                     max_new_tokens=args.max_new_tokens)
    print(format_report(result))
    if args.output:
        from a3duck.config import atomic_write_text

        atomic_write_text(Path(args.output), json.dumps(result, indent=2))
    return 0


def _chat(args) -> int:
    """A minimal terminal chat (the Gradio Space is the full one)."""
    from a3duck.compare import generate_answer, load_for_compare

    model, tokenizer, template = load_for_compare(args.adapter, args.base_model)
    print("a3duck chat: empty line or Ctrl-D to quit", file=sys.stderr)
    for line in sys.stdin:
        if not line.strip():
            break
        print(generate_answer(model, tokenizer, template.render(line.strip()), template,
                              args.max_new_tokens))
    return 0
