"""The Open LLM Leaderboard (v1) suite for a base model and its adapters, written to the results
file and printed as a table: the library behind `a3duck eval` (its flags are in
:mod:`a3duck.commands.eval`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from a3duck import adapter_folder
from a3duck.evaluation.leaderboard import FEWSHOT_SEED
from a3duck.evaluation.runner import (
    EvalError,
    ModelSpec,
    adapter_labels,
    adapter_sources,
    parse_tasks,
    plan,
    run_suite,
)
from a3duck.outputs import check_output, output_lock
from a3duck.scratch import temp_folder

log = logging.getLogger(__name__)


def portable_name(name: str | None) -> str | None:
    """A name for the results file that does not leak a local path (Hub ids stay as they are)."""
    from a3duck import embedded
    from a3duck.files import public_name

    if name is None or not Path(name).expanduser().is_dir():
        return name
    return embedded.recorded_hub_id(Path(name).expanduser()) or public_name(name)


def _base_for(adapter: str | None) -> str:
    return adapter_folder.base_of(adapter_folder.resolve(adapter) if adapter else None)


def evaluate_to_file(*, base_model: str | None, adapters: list[str] | None = None,
                     tasks: str = "all", limit: int | None = None, batch_size: int | str = 8,
                     device: str | None = None, dtype: str = "auto",
                     data_dir: Path | None = None, output: Path | None = None,
                     backend: str = "a3duck", prefix_cache_tokens: int | None = None) -> Path:
    """Run the suite for the base and each adapter (the base is loaded once), write
    the results file, print the table; return the results file."""
    import datasets

    from a3duck.evaluation import provenance
    from a3duck.evaluation import results as res

    datasets.disable_progress_bars()  # one bar per converted file (114 for MMLU) is noise

    benches = parse_tasks(tasks)
    adapters = list(adapters or [])
    first = adapter_sources(adapters)[0] if adapters else None
    spec = ModelSpec(base_model=base_model or _base_for(first), adapters=adapters,
                     dtype=dtype, device=device, batch_size=batch_size, backend=backend,
                     prefix_cache_tokens=prefix_cache_tokens)
    output = output or adapter_folder.default_eval_output(first)
    check_output(output, "--output", folder=False)  # before the model loads, not after
    with output_lock(output, "--output"):
        started = time.monotonic()
        with temp_folder("eval") as work:
            p = plan(benches, data_dir, Path(work))
            for note in p.notes:
                log.info("%s", note)
            for bench, why in p.missing.items():
                log.warning("%s: missing, not evaluated (%s)", bench, why)
            rows, details = run_suite(spec, p, limit)
            sources = provenance.data_sources(p.names, p.objects, data_dir)
        backend, used_dtype, tokens, digests = (details.pop(k) for k in
                                                ("backend", "dtype", "tokens", "sha256"))
        document = res.build_document(
            portable_name(spec.base_model), portable_name(first) if len(adapters) == 1 else None,
            rows, settings=_settings(backend, limit, dtype, data_dir, started),
            details=details, missing=p.missing, notes=p.notes, tokens_read=tokens,
            adapter_sha256=digests, **_adapter_names(adapters))
        provenance.stamp(rows, sources, lm_eval_version=document["lm_eval_version"],
                         backend=backend, dtype=used_dtype, batch_size=batch_size,
                         limit=limit, date=document["date"])
        res.write_results(output, document)
        print(res.format_table(rows, p.missing))
        if tokens.get("base"):
            print(format_tokens(tokens["base"]))
        print(f"\nwrote {output}")
    return output


def _settings(backend: str, limit: int | None, dtype: str, data_dir: Path | None,
              started: float) -> dict:
    return {"backend": backend, "limit": limit, "dtype": dtype,
            "data": "local files (--data-dir)" if data_dir else "Hugging Face Hub",
            "fewshot_seed": FEWSHOT_SEED, "wall_seconds": round(time.monotonic() - started)}


def _adapter_names(adapters: list[str]) -> dict:
    """With several adapters: {"adapters": {row label: portable name}}."""
    if len(adapters) < 2:
        return {}
    return {"adapters": dict(zip(adapter_labels(adapters),
                                 map(portable_name, adapter_sources(adapters)), strict=True))}


def format_tokens(counts: dict[str, dict]) -> str:
    """Tokens read per task: a plain per-request run vs this backend."""
    lines = ["\ntokens read (base model): per-request run -> this backend"]
    for bench, c in counts.items():
        lines.append(f"  {bench:<15}{c['plain']:>12,} -> {c['read']:>12,}  "
                     f"({c['ratio']:.2f}x fewer)")
    return "\n".join(lines)


__all__ = ["EvalError", "evaluate_to_file"]
