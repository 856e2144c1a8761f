"""`a3duck eval`: the Open LLM Leaderboard (v1) suite for a base model and its adapter."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from a3duck.evaluation.leaderboard import FEWSHOT_SEED, TASK_ORDER
from a3duck.evaluation.prefix_cache import DEFAULT_PREFIX_CACHE_TOKENS
from a3duck.evaluation.runner import (
    BACKENDS,
    EvalError,
    ModelSpec,
    adapter_labels,
    parse_tasks,
    plan,
    run_suite,
)

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-model", help="Hub id or local folder of the base model (default: "
                        "the adapter's recorded base, else the embedded "
                        "HuggingFaceTB/SmolLM2-135M-Instruct)")
    parser.add_argument("--adapter", action="append", default=[],
                        help="IA3 adapter folder or Hub id; evaluated next to the base with "
                        "deltas (without it, the base alone). Repeat it to evaluate several "
                        "adapters of one base in one run (the base is loaded once)")
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
    parser.add_argument("--prefix-cache-tokens", type=_non_negative_int, default=None,
                        help="a3duck backend: at most this many shared-prefix tokens keep their "
                        "key/value cache at once (default "
                        f"{DEFAULT_PREFIX_CACHE_TOKENS}; 0 turns the cross-document cache off)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
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
    from a3duck.embedded import EMBEDDED_MODEL_ID

    if adapter:
        recorded = models.read_adapter_config(models.resolve_adapter(adapter))
        if recorded.get("base_model_name_or_path"):
            return recorded["base_model_name_or_path"]
    return EMBEDDED_MODEL_ID


def run(args: argparse.Namespace) -> int:
    import datasets

    from a3duck.evaluation import provenance
    from a3duck.evaluation import results as res

    datasets.disable_progress_bars()  # one bar per converted file (114 for MMLU) is noise

    benches = parse_tasks(args.tasks)
    adapters = list(args.adapter or [])
    first = adapters[0] if adapters else None
    spec = ModelSpec(base_model=args.base_model or _base_for(first), adapters=adapters,
                     dtype=args.dtype, device=args.device, batch_size=args.batch_size,
                     backend=args.backend, prefix_cache_tokens=args.prefix_cache_tokens)
    output = args.output or default_output(first)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="a3duck-eval-") as work:
        p = plan(benches, args.data_dir, Path(work))
        for note in p.notes:
            log.info("%s", note)
        for bench, why in p.missing.items():
            log.warning("%s: missing, not evaluated (%s)", bench, why)
        rows, details = run_suite(spec, p, args.limit)
        sources = provenance.data_sources(p.names, p.objects, args.data_dir)
    backend, dtype, tokens = (details.pop(k) for k in ("backend", "dtype", "tokens"))
    document = res.build_document(
        portable_name(spec.base_model), portable_name(first) if len(adapters) == 1 else None,
        rows, settings=_settings(args, backend, started),
        details=details, missing=p.missing, notes=p.notes, tokens_read=tokens,
        **_adapter_names(adapters))
    provenance.stamp(rows, sources, lm_eval_version=document["lm_eval_version"],
                     backend=backend, dtype=dtype, batch_size=args.batch_size,
                     limit=args.limit, date=document["date"])
    res.write_results(output, document)
    print(res.format_table(rows, p.missing))
    if tokens.get("base"):
        print(format_tokens(tokens["base"]))
    print(f"\nwrote {output}")
    return 0


def _settings(args: argparse.Namespace, backend: str, started: float) -> dict:
    return {"backend": backend, "limit": args.limit, "dtype": args.dtype,
            "data": "local files (--data-dir)" if args.data_dir else "Hugging Face Hub",
            "fewshot_seed": FEWSHOT_SEED, "wall_seconds": round(time.monotonic() - started)}


def _adapter_names(adapters: list[str]) -> dict:
    """With several adapters: {"adapters": {row label: portable name}}."""
    if len(adapters) < 2:
        return {}
    return {"adapters": dict(zip(adapter_labels(adapters), map(portable_name, adapters),
                                 strict=True))}


def format_tokens(counts: dict[str, dict]) -> str:
    """Tokens read per task: a plain per-request run vs this backend."""
    lines = ["\ntokens read (base model): per-request run -> this backend"]
    for bench, c in counts.items():
        lines.append(f"  {bench:<15}{c['plain']:>12,} -> {c['read']:>12,}  "
                     f"({c['ratio']:.2f}x fewer)")
    return "\n".join(lines)


__all__ = ["EvalError", "add_arguments", "run"]
