"""The Open LLM Leaderboard (v1) suite for a base model and its adapter, written to
eval_results.json (the library behind `a3duck eval`, whose flags are in a3duck.commands.eval)."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from a3duck.evaluation.leaderboard import FEWSHOT_SEED
from a3duck.evaluation.runner import EvalError, ModelSpec, parse_tasks, plan, run_suite

log = logging.getLogger(__name__)


def default_output(adapter: str | None) -> Path:
    if adapter and Path(adapter).expanduser().is_dir():
        return Path(adapter).expanduser().parent / "eval_results.json"
    return Path("eval_results.json")


def portable_name(name: str | None) -> str | None:
    """A name for the results file that does not leak a local path (Hub ids stay as they are)."""
    from a3duck import embedded
    from a3duck.files import public_name

    if name is None or not Path(name).expanduser().is_dir():
        return name
    return embedded.recorded_hub_id(Path(name).expanduser()) or public_name(name)


def _base_for(adapter: str | None) -> str:
    from a3duck import models

    return models.base_of(models.resolve_adapter(adapter) if adapter else None)


def evaluate_to_file(*, base_model: str | None, adapter: str | None, tasks: str = "all",
                     limit: int | None = None, batch_size: int | str = 8,
                     device: str | None = None, dtype: str = "auto",
                     data_dir: Path | None = None, output: Path | None = None,
                     backend: str = "a3duck") -> Path:
    """Run the suite, write eval_results.json, print the table; return the results file."""
    import datasets

    from a3duck.evaluation import results as res

    datasets.disable_progress_bars()  # one bar per converted file (114 for MMLU) is noise

    benches = parse_tasks(tasks)
    spec = ModelSpec(base_model=base_model or _base_for(adapter), adapter=adapter,
                     dtype=dtype, device=device, batch_size=batch_size, backend=backend)
    output = output or default_output(adapter)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="a3duck-eval-") as work:
        p = plan(benches, data_dir, Path(work))
        for note in p.notes:
            log.info("%s", note)
        for bench, why in p.missing.items():
            log.warning("%s: missing, not evaluated (%s)", bench, why)
        rows, details = run_suite(spec, p, limit)
    document = res.build_document(
        portable_name(spec.base_model), portable_name(adapter), rows,
        settings={"backend": details.pop("backend"), "limit": limit, "dtype": dtype,
                  "data": "local files (--data-dir)" if data_dir else "Hugging Face Hub",
                  "fewshot_seed": FEWSHOT_SEED, "wall_seconds": round(time.monotonic() - started)},
        details=details, missing=p.missing, notes=p.notes,
    )
    res.write_results(output, document)
    print(res.format_table(rows, p.missing))
    print(f"\nwrote {output}")
    return output


__all__ = ["EvalError", "evaluate_to_file"]
