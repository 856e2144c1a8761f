"""`a3duck chat`: a minimal terminal chat with base + adapter (the Gradio Space is the full one)."""

from __future__ import annotations

import argparse
import sys

from a3duck.limits import MAX_COUNT, flag


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--adapter",
                        help="adapter folder or Hub id (e.g. out/adapter, DopeorNope/A3_duck)")
    parser.add_argument("--base-model", help="base model id/folder (default: the adapter's base)")
    parser.add_argument("--max-new-tokens", type=flag(low=1, high=MAX_COUNT), default=48,
                        help="tokens to generate per answer")


def run(args: argparse.Namespace) -> int:
    from a3duck.compare import generate_answer, load_for_compare

    model, tokenizer, template = load_for_compare(args.adapter, args.base_model)
    print("a3duck chat: empty line or Ctrl-D to quit", file=sys.stderr)
    for line in sys.stdin:
        if not line.strip():
            break
        print(generate_answer(model, tokenizer, template.render(line.strip()), template,
                              args.max_new_tokens))
    return 0
