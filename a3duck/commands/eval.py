"""`a3duck eval`: the Open LLM Leaderboard (v1) suite for a base model and its adapters."""

from __future__ import annotations

import argparse
from pathlib import Path

from a3duck.adapter_folder import EVAL_RESULTS
from a3duck.evaluation.benchmarks import LAYOUT
from a3duck.evaluation.leaderboard import TASK_ORDER
from a3duck.evaluation.prefix_cache import DEFAULT_PREFIX_CACHE_TOKENS
from a3duck.evaluation.runner import BACKENDS
from a3duck.limits import MAX_COUNT, flag


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-model", help="Hub id or local folder of the base model (default: "
                        "the adapter's recorded base, else the embedded "
                        "HuggingFaceTB/SmolLM2-135M-Instruct)")
    parser.add_argument("--adapter", action="append", default=[],
                        help="IA3 adapter folder or Hub id, optionally NAME=FOLDER_OR_ID; "
                        "evaluated next to the base with deltas (without it, the base alone). "
                        "Repeat it to evaluate several adapters of one base in one run (the "
                        "base is loaded once; rows are labelled by NAME, else the Hub id or "
                        "run folder's name)")
    parser.add_argument("--tasks", default="all", help="comma-separated subset of "
                        f"{','.join(TASK_ORDER)} (default: all)")
    parser.add_argument("--limit", type=positive_int, help="evaluate only the first N documents "
                        "of each task (each MMLU subject); for smoke runs, not for reporting")
    parser.add_argument("--batch-size", default="8", type=_batch_size,
                        help="batch size for scoring (an integer, or 'auto'; default 8)")
    parser.add_argument("--device", help="torch device, e.g. cpu, cuda, cuda:1 (default: the "
                        "model's own placement: cpu, or cuda when available)")
    parser.add_argument("--dtype", default="auto", choices=("auto", "fp32", "bf16"),
                        help="weights dtype: auto = bf16 on capable GPUs, fp32 elsewhere")
    parser.add_argument("--data-dir", type=Path, help="folder with the original benchmark files "
                        f"({LAYOUT}; see docs/evaluation.md); "
                        "without it lm-eval downloads the Hub datasets")
    parser.add_argument("--output", type=Path, help=f"where to write {EVAL_RESULTS} (default: "
                        f"beside a local adapter folder, else ./{EVAL_RESULTS})")
    parser.add_argument("--backend", default="a3duck", choices=BACKENDS,
                        help="lm-eval model backend: a3duck (shared-context multiple-choice "
                        "scoring, same numbers) or lm-eval's hf; when a3duck cannot be used, "
                        "eval stops and says so")
    parser.add_argument("--prefix-cache-tokens", type=_non_negative_int, default=None,
                        help="a3duck backend: at most this many shared-prefix tokens keep their "
                        "key/value cache at once (default "
                        f"{DEFAULT_PREFIX_CACHE_TOKENS}; 0 turns the cross-document cache off)")


positive_int = flag(low=1, high=MAX_COUNT)  # the one number rule (a3duck.limits)
_non_negative_int = flag(low=0, high=MAX_COUNT)


def _batch_size(text: str) -> int | str:
    return text if text == "auto" else positive_int(text)


def run(args: argparse.Namespace) -> int:
    from a3duck.evaluation.suite import evaluate_to_file

    evaluate_to_file(base_model=args.base_model, adapters=args.adapter, tasks=args.tasks,
                     limit=args.limit, batch_size=args.batch_size, device=args.device,
                     dtype=args.dtype, data_dir=args.data_dir, output=args.output,
                     backend=args.backend, prefix_cache_tokens=args.prefix_cache_tokens)
    return 0
