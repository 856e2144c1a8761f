"""`a3duck eval`: the Open LLM Leaderboard (v1) suite for a base model and its adapter."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from a3duck.evaluation.leaderboard import FEWSHOT_SEED, TASK_ORDER
from a3duck.evaluation.runner import BACKENDS, EvalError, ModelSpec, parse_tasks, plan, run_suite

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-model", help="Hub id or local folder of the base model (default: "
                        "the adapter's recorded base, else the embedded "
                        "HuggingFaceTB/SmolLM2-135M-Instruct)")
    parser.add_argument("--adapter", help="IA3 adapter folder or Hub id; evaluated next to the "
                        "base with deltas (without it, the base alone)")
    parser.add_argument("--tasks", default="all", help="comma-separated subset of "
                        f"{','.join(TASK_ORDER)} (default: all four)")
    parser.add_argument("--limit", type=_positive_int, help="evaluate only the first N documents "
                        "of each task (each MMLU subject); for smoke runs, not for reporting")
    parser.add_argument("--batch-size", default="8", type=_batch_size,
                        help="batch size for scoring (an integer, or 'auto'; default 8)")
    parser.add_argument("--device", help="torch device, e.g. cpu, cuda, cuda:1 (default: the "
                        "model's own placement: cpu, or cuda when available)")
    parser.add_argument("--dtype", default="auto", choices=("auto", "fp32", "bf16"),
                        help="weights dtype: auto = bf16 on capable GPUs, fp32 elsewhere")
    parser.add_argument("--data-dir", type=Path, help="folder with the original benchmark files "
                        "(mmlu/, arc/, hellaswag/, truthfulqa/; see docs/evaluation.md); "
                        "without it lm-eval downloads the Hub datasets")
    parser.add_argument("--output", type=Path, help="where to write eval_results.json (default: "
                        "beside a local adapter folder, else ./eval_results.json)")
    parser.add_argument("--backend", default="a3duck", choices=BACKENDS,
                        help="lm-eval model backend: a3duck (shared-context multiple-choice "
                        "scoring, same numbers) or lm-eval's hf")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _batch_size(text: str) -> int | str:
    return text if text == "auto" else _positive_int(text)


def default_output(adapter: str | None) -> Path:
    if adapter and Path(adapter).expanduser().is_dir():
        return Path(adapter).expanduser().parent / "eval_results.json"
    return Path("eval_results.json")


def portable_name(name: str | None) -> str | None:
    """A name for the results file that does not leak a local path (Hub ids stay as they are)."""
    from a3duck import embedded

    if name is None or not Path(name).expanduser().is_dir():
        return name
    path = Path(name).expanduser()
    recorded = embedded.recorded_hub_id(path)
    return recorded or (name if not path.is_absolute() else path.name)


def _base_for(adapter: str | None) -> str:
    from a3duck import models

    return models.base_of(models.resolve_adapter(adapter) if adapter else None)


def run(args: argparse.Namespace) -> int:
    import datasets

    from a3duck.evaluation import results as res

    datasets.disable_progress_bars()  # one bar per converted file (114 for MMLU) is noise

    benches = parse_tasks(args.tasks)
    spec = ModelSpec(base_model=args.base_model or _base_for(args.adapter), adapter=args.adapter,
                     dtype=args.dtype, device=args.device, batch_size=args.batch_size,
                     backend=args.backend)
    output = args.output or default_output(args.adapter)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="a3duck-eval-") as work:
        p = plan(benches, args.data_dir, Path(work))
        for note in p.notes:
            log.info("%s", note)
        for bench, why in p.missing.items():
            log.warning("%s: missing, not evaluated (%s)", bench, why)
        rows, details = run_suite(spec, p, args.limit)
    document = res.build_document(
        portable_name(spec.base_model), portable_name(args.adapter), rows,
        settings={"backend": details.pop("backend"), "limit": args.limit, "dtype": args.dtype,
                  "data": "local files (--data-dir)" if args.data_dir else "Hugging Face Hub",
                  "fewshot_seed": FEWSHOT_SEED, "wall_seconds": round(time.monotonic() - started)},
        details=details, missing=p.missing, notes=p.notes,
    )
    res.write_results(output, document)
    print(res.format_table(rows, p.missing))
    print(f"\nwrote {output}")
    return 0


__all__ = ["EvalError", "add_arguments", "run"]
