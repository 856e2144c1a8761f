"""Run the leaderboard suite through lm-eval for a base model and (optionally) its adapter.

Order of work, so that bad input fails before any model work: parse tasks -> convert/validate
local files (or build lm-eval's Hub tasks) -> resolve the adapter -> load the base once ->
check the adapter fits -> evaluate the base -> attach the adapter to the same model -> evaluate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from a3duck.errors import A3DuckError
from a3duck.evaluation import results as res
from a3duck.evaluation.leaderboard import (
    FEWSHOT_SEED,
    LEADERBOARD_TASKS,
    TASK_ORDER,
    LocalTask,
    load_tasks,
    mmlu_subjects,
    per_subject,
    task_manager,
    write_task_yaml,
)

log = logging.getLogger(__name__)
BACKENDS = ("a3duck", "hf")


class EvalError(A3DuckError):
    """A bad evaluation request (unknown task, unreachable benchmark data, bad backend)."""


@dataclass
class Plan:
    """The lm-eval tasks to run per benchmark, what is missing, and notes for the user."""

    folder: Path
    tasks: dict[str, list[LocalTask]]
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    objects: dict = field(default_factory=dict)  # lm-eval Task objects by name

    @property
    def names(self) -> dict[str, list[str]]:
        return {b: [t.name for t in ts] for b, ts in self.tasks.items()}

    @property
    def partial(self) -> set[str]:
        return {b for b, ts in self.tasks.items()
                if per_subject(b) and 0 < len(ts) < len(mmlu_subjects())}


def parse_tasks(spec: str | list[str] | None) -> list[str]:
    """Benchmarks to run, in leaderboard order; None/'all' means every task of the table."""
    if spec is None or spec == "all":
        return list(TASK_ORDER)
    names = [t.strip() for t in (spec.split(",") if isinstance(spec, str) else spec) if t.strip()]
    unknown = [t for t in names if t not in LEADERBOARD_TASKS]
    if unknown or not names:
        raise EvalError(f"unknown task {', '.join(unknown) or '(none)'}; choose from "
                        f"{', '.join(TASK_ORDER)} (comma-separated) or 'all'")
    return [t for t in TASK_ORDER if t in names]


def plan(benches: list[str], data_dir: Path | None, work: Path) -> Plan:
    """Write lm-eval task configs for ``benches`` into ``work/tasks`` and build the Task objects
    (this reads and validates every benchmark file, or fetches lm-eval's Hub datasets)."""
    from a3duck.evaluation import benchmarks as local_data

    folder = work / "tasks"
    if data_dir is not None:
        prep = local_data.prepare(Path(data_dir), benches, work)
        p = Plan(folder, prep.tasks, prep.missing, prep.notes)
    else:
        p = Plan(folder, {b: ([LocalTask(b, {}, subject=s) for s in mmlu_subjects()]
                              if per_subject(b) else [LocalTask(b, {})]) for b in benches})
    for tasks in p.tasks.values():
        for t in tasks:
            write_task_yaml(folder, t)
    try:
        p.objects = load_tasks(folder, [t for ts in p.tasks.values() for t in ts])
    except Exception as exc:
        if data_dir is not None:
            raise EvalError(f"lm-eval could not build the local tasks: {exc}") from exc
        raise EvalError(
            f"could not get the benchmark datasets from the Hugging Face Hub "
            f"({type(exc).__name__}). Offline, pass --data-dir with the original benchmark "
            "files (see docs/evaluation.md)") from exc
    return p


def lm_class(backend: str):
    """The lm-eval model class for ``backend``. When the a3duck backend cannot be used (it
    overrides a private lm-eval method: see pyproject.toml's lm-eval pin), evaluation stops and
    says so; lm-eval's own ``hf`` backend is used only when asked for (``--backend hf``)."""
    from lm_eval.api.registry import get_model

    if backend not in BACKENDS:
        raise EvalError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "hf":
        return get_model("hf")
    try:
        import a3duck.evaluation.fast_backend  # noqa: F401  (registers "a3duck")

        return get_model("a3duck")
    except (ImportError, KeyError, ValueError) as exc:
        raise EvalError(f"the a3duck evaluation backend cannot be used with this lm-eval "
                        f"({type(exc).__name__}: {exc}); pass --backend hf to evaluate with "
                        "lm-eval's own (slower) hf backend") from None


def evaluate(lm, p: Plan, limit: int | None) -> dict:
    """One lm-eval run of every planned task on ``lm`` with the fixed leaderboard seeds."""
    import lm_eval

    from a3duck.logs import without_bare_bars

    with without_bare_bars():  # one bar per task (57 for MMLU) while lm-eval builds requests
        return lm_eval.simple_evaluate(
            model=lm, tasks=list(p.objects.values()), limit=limit, log_samples=False,
            task_manager=task_manager(p.folder), random_seed=0, numpy_random_seed=FEWSHOT_SEED,
            torch_random_seed=FEWSHOT_SEED, fewshot_random_seed=FEWSHOT_SEED,
        )


@dataclass
class ModelSpec:
    base_model: str
    adapters: list[str] = field(default_factory=list)
    dtype: str = "auto"
    device: str | None = None
    batch_size: int | str = 8
    backend: str = "a3duck"
    prefix_cache_tokens: int | None = None  # a3duck backend only; None = its default


def adapter_labels(adapters: list[str]) -> list[str]:
    """The ``model`` label of each adapter's rows: ``adapter`` for a single one (as always);
    with several, each one's display name (``NAME=SOURCE``, a Hub id, the run folder's name:
    :mod:`a3duck.adapter_names`), distinct."""
    from a3duck.adapter_names import display_names

    if len(adapters) == 1:
        return ["adapter"]
    return [name for name, _ in display_names(adapters)]


def adapter_sources(adapters: list[str]) -> list[str]:
    """Each adapter's folder or Hub id, without its ``NAME=``."""
    from a3duck.adapter_names import split_spec

    return [split_spec(a)[1] for a in adapters]


def _switch(model, adapter_dir: Path, name: str, previous: str | None):
    """Attach adapter ``name`` to the loaded base (IA3 vectors only; the base stays loaded) and
    drop the previous one."""
    from peft import PeftModel

    if previous is None:
        return PeftModel.from_pretrained(model, str(adapter_dir), adapter_name=name,
                                         is_trainable=False)
    model.load_adapter(str(adapter_dir), adapter_name=name, is_trainable=False)
    model.set_adapter(name)
    model.delete_adapter(previous)
    return model


def token_counts(lm, names: dict[str, list[str]]) -> dict[str, dict]:
    """Per benchmark: tokens a plain per-request run reads, tokens the backend read, ratio."""
    counts = getattr(lm, "token_counts", None) or {}
    out = {}
    for bench, tasks in names.items():
        plain = sum(counts.get(t, (0, 0))[0] for t in tasks)
        read = sum(counts.get(t, (0, 0))[1] for t in tasks)
        if plain:
            out[bench] = {"plain": plain, "read": read, "ratio": round(plain / max(read, 1), 2)}
    return out


def run_suite(spec: ModelSpec, p: Plan, limit: int | None) -> tuple[list[dict], dict]:
    """Evaluate the base and then each adapter on the planned tasks, loading the base once.
    Returns (rows, details); ``details["sha256"]`` maps each adapter's label to its weights'
    sha256 (what `a3duck card` matches results by)."""
    from a3duck import adapter_folder, models

    adapter_dirs = [adapter_folder.resolve(a) for a in adapter_sources(spec.adapters)]
    cls = lm_class(spec.backend)
    dtype = models.pick_dtype(spec.dtype, spec.device)
    model, path = models.load_base(spec.base_model, dtype=dtype, device=spec.device)
    for adapter_dir in adapter_dirs:
        models.check_adapter_matches(model, adapter_dir, spec.base_model)
    backend = "hf" if cls.__name__ == "HFLM" else spec.backend
    extra = ({"prefix_cache_tokens": spec.prefix_cache_tokens}
             if backend == "a3duck" and spec.prefix_cache_tokens is not None else {})
    labels = adapter_labels(spec.adapters)
    rows, details = [], {"backend": backend, "dtype": str(model.dtype).removeprefix("torch."),
                         "tokens": {}, "sha256": {label: adapter_folder.weights_sha256(d)
                                                  for label, d in zip(labels, adapter_dirs)}}
    previous = None
    for n, (which, adapter_dir) in enumerate([("base", None),
                                              *zip(labels, adapter_dirs, strict=True)]):
        if adapter_dir is not None:
            # PEFT's name is internal: a label such as "half" or "to" would clash with
            # nn.Module attributes inside PEFT's ParameterDicts.
            name = f"a3duck_adapter_{n}"
            model, previous = _switch(model, adapter_dir, name, previous), name
        # the tokenizer `hf` would load for pretrained=BASE(,peft=ADAPTER): the base's own
        lm = cls(pretrained=model.eval(), tokenizer=path, batch_size=spec.batch_size, **extra)
        log.info("evaluating %s on %s", which, ", ".join(p.tasks))
        out = evaluate(lm, p, limit)
        model_rows, model_details = res.rows_for_model(which, out, p.names, p.partial)
        rows += model_rows
        details[which] = model_details
        details["tokens"][which] = token_counts(lm, p.names)
    return rows, details
