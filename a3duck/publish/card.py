"""`a3duck card`: render the model card (README.md) of an adapter folder.

The card is rendered from the artifacts only — ``adapter_config.json``, the adapter weights,
``a3duck_config.yaml``, ``train_metrics.json``, ``data_report.json``, an ``eval_results.json`` and
a contamination report when given — through ``huggingface_hub.ModelCard.from_template`` with the
Jinja templates in ``model_card/``. Nothing is invented: an absent eval file renders as "not
evaluated", ``--limit`` rows are marked partial and kept out of the ``model-index`` metadata.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import yaml

from a3duck import __version__
from a3duck.config import CONFIG_FILENAME, MIX_KEY
from a3duck.evaluation.leaderboard import LEADERBOARD_TASKS, task_named
from a3duck.evaluation.leaderboard import TASK_ORDER as LEADERBOARD_ORDER
from a3duck.files import is_hub_id, public_name, scrub_local_paths
from a3duck.models import ADAPTER_CONFIG, read_adapter_config
from a3duck.publish import DEFAULT_REPO_ID, CardError
from a3duck.publish.artifacts import (
    data_report,
    hyperparameters,
    parameter_counts,
    read_json,
    read_yaml,
    train_metrics,
)

log = logging.getLogger(__name__)

# The templates live in the repository's top-level model_card/ (a promised location); the wheel
# carries the same files inside the package (pyproject maps model_card/ to a3duck/publish/model_card).
_PACKAGED = Path(__file__).resolve().parent / "model_card"
TEMPLATE_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[2] / "model_card"
REFERENCES = TEMPLATE_DIR / "reference_results.yaml"
LANGS = ("en", "ko")


TASK_ORDER = (*LEADERBOARD_ORDER, "average")  # card rows: the tasks, then their mean
_TASKS_WORD = ("one", "two", "three", "four", "five", "six", "seven", "eight")[
    len(LEADERBOARD_ORDER) - 1]  # "mean of the four"


def render_card(adapter_dir: Path, *, repo_id: str = DEFAULT_REPO_ID,
                eval_results: str | Path | None = None, contamination: str | Path | None = None,
                lang: str = "en"):
    """Render the card for ``adapter_dir``; returns a ``huggingface_hub.ModelCard``."""
    from huggingface_hub import ModelCard, ModelCardData

    if lang not in LANGS:
        raise CardError(f"--lang must be one of {', '.join(LANGS)}, got {lang!r}")
    check_repo_id(repo_id)
    ctx = card_context(Path(adapter_dir), repo_id, eval_results, contamination)
    data = ModelCardData(
        base_model=ctx["base_model"], library_name="peft", pipeline_tag="text-generation",
        license="mit", language=["en"], datasets=ctx["datasets"] or None,
        tags=["ia3", "peft", "a3duck", "text-generation"], model_name=repo_id.split("/")[-1],
        eval_results=model_index_results(ctx["eval_raw"]) or None,
    )
    template = TEMPLATE_DIR / f"README.{lang}.md.jinja"
    card = ModelCard.from_template(data, template_path=str(template), **ctx)
    return ModelCard(re.sub(r"\n{3,}", "\n\n", str(card)))  # template blocks leave blank runs


def card_context(adapter_dir: Path, repo_id: str, eval_results, contamination) -> dict[str, Any]:
    """Every fact the templates show, pre-formatted; None where a fact is unavailable."""
    if not (adapter_dir / ADAPTER_CONFIG).is_file():
        raise CardError(f"{adapter_dir} is not an adapter folder: {ADAPTER_CONFIG} is missing")
    adapter_cfg = read_adapter_config(adapter_dir)
    base = adapter_cfg.get("base_model_name_or_path") or ""
    config = read_yaml(adapter_dir / CONFIG_FILENAME)
    eval_raw = load_eval_results(eval_results, adapter_dir, base)
    data_name = str(config.get("data", "")) if config else ""
    return {
        "repo_id": repo_id, "base_model": base, "a3duck_version": __version__,
        "params": parameter_counts(adapter_dir, base),
        "target_modules": _names(adapter_cfg.get("target_modules")),
        "feedforward_modules": _names(adapter_cfg.get("feedforward_modules")),
        "hyperparameters": hyperparameters(config),
        "dataset": _display_dataset(data_name), "datasets": [data_name] if is_hub_id(data_name)
        else [],
        "train": train_metrics(adapter_dir), "data_report": data_report(adapter_dir),
        "contamination": contamination_summary(contamination),
        "eval": eval_table(eval_raw), "eval_raw": eval_raw,
        "mix": (config or {}).get(MIX_KEY),
        "references": reference_rows(), "plots": sorted(
            p.relative_to(adapter_dir).as_posix() for p in adapter_dir.glob("plots/*.png")),
    }


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if the Hub would accept it as a model repo 'owner/name'; CardError if not."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
        if not is_hub_id(repo_id):
            raise HFValidationError("it must be 'owner/name'")
    except HFValidationError as exc:
        raise CardError(f"invalid --repo-id {repo_id!r}: {str(exc).splitlines()[0]} (letters, "
                        "digits, '-', '_', '.'; e.g. your-name/my-ia3-adapter)") from None
    return repo_id


def _display_dataset(name: str) -> str | None:
    if not name:
        return None
    return name if is_hub_id(name) else f"{public_name(name)} (a local file)"


def _names(value) -> str:
    if value is None:
        return "PEFT default"
    return ", ".join(sorted(value)) if isinstance(value, (list, set, tuple)) else str(value)


def contamination_summary(path: str | Path | None) -> dict[str, Any] | None:
    """Method, threshold, totals and per-benchmark counts of a `check-contamination` report."""
    if not path:
        return None
    p = Path(path)
    if not p.is_file():
        raise CardError(f"contamination report not found: {p}")
    report = read_json(p)
    if not isinstance(report.get("benchmarks"), dict):
        raise CardError(f"{p}: no 'benchmarks' (is it from `a3duck check-contamination`?)")
    rows = [{"name": _long_title(name), "status": b.get("status", "?"),
             "questions": _dash(b.get("questions")), "exact": _dash(b.get("exact_duplicates")),
             "near": _dash(b.get("near_duplicates")),
             "matched": _dash(b.get("contaminated_questions"))}
            for name, b in report["benchmarks"].items()]
    return {"method": report.get("method", "not stated"),
            "threshold": report.get("threshold", "not stated"), "rows": rows,
            "flagged": _dash(report.get("flagged_training_rows")),
            "total": _dash(report.get("training_rows"))}


def _long_title(name: str) -> str:
    spec = task_named(name)
    return spec.long_title if spec else name


def load_eval_results(path, adapter_dir: Path, base: str) -> dict | None:
    """The eval results for this adapter, or None ('not evaluated')."""
    candidates = [Path(path)] if path else [adapter_dir / "eval_results.json",
                                            adapter_dir.parent / "eval_results.json"]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        if path:
            log.warning("%s not found: the card says 'not evaluated'", path)
        return None
    data = read_json(found)
    if not isinstance(data.get("results"), list):
        raise CardError(f"{found}: no 'results' list (is it from `a3duck eval`?)")
    if data.get("base_model") and base and data["base_model"] != base:
        raise CardError(f"{found} evaluated base {data['base_model']!r}, but this adapter was "
                        f"trained on {base!r}; pass the eval results of this adapter")
    return data


def _local_run(data: dict) -> bool:
    """Scored on local benchmark files (other splits/subsets than the leaderboard's)."""
    return str((data.get("settings") or {}).get("data", "")).startswith("local")


def _pct(value) -> str:
    return f"{100 * value:.2f}"


def eval_table(data: dict | None) -> dict[str, Any] | None:
    """Rows (task x base/adapter) for the card's evaluation table; None if not evaluated."""
    if data is None:
        return None
    by_key = {(r["model"], r["task"]): r for r in data["results"]}
    rows, partial = [], False
    for task in TASK_ORDER:
        base, adapter = by_key.get(("base", task)), by_key.get(("adapter", task))
        if base is None and adapter is None:
            continue
        cells = [_cell(r) for r in (base, adapter)]
        limited = any(r and r.get("limited") for r in (base, adapter))
        partial |= limited
        delta = (f"{100 * (adapter['value'] - base['value']):+.2f}"
                 if base and adapter else "–")
        any_row = adapter or base
        spec = LEADERBOARD_TASKS.get(task)
        rows.append({"task": spec.long_title if spec else "Average", "base": cells[0],
                     "adapter": cells[1], "delta": delta, "partial": limited,
                     "shots": _dash(any_row.get("num_fewshot")) if task != "average" else "–",
                     "metric": spec.leaderboard_metric if spec else f"mean of the {_TASKS_WORD}",
                     "n_docs": _dash(any_row.get("n_docs"))})
    settings = data.get("settings") or {}
    return {"rows": rows, "partial": partial, "date": data.get("date", "unknown"),
            "local_files": _local_run(data),
            "notes": [scrub_local_paths(str(n))[0] for n in data.get("notes") or []],
            "backend": settings.get("backend"),
            "lm_eval_version": data.get("lm_eval_version", "unknown"),
            "a3duck_version": data.get("a3duck_version", "unknown")}


def _dash(value) -> str:
    return "–" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _cell(row: dict | None) -> str:
    if row is None:
        return "not evaluated"
    text = _pct(row["value"])
    if row.get("stderr") is not None:
        text += f" ± {_pct(row['stderr'])}"
    return text + (" †" if row.get("limited") else "")


def model_index_results(data: dict | None) -> list:
    """The adapter's full (not ``--limit``) leaderboard results as Hub ``EvalResult``s."""
    from huggingface_hub import EvalResult

    results = []
    for row in (data or {}).get("results", []):
        spec = LEADERBOARD_TASKS.get(row["task"])
        if row["model"] != "adapter" or spec is None or row.get("limited") or _local_run(data):
            continue  # only full runs on the leaderboard's own datasets belong in model-index
        shots, hub = row.get("num_fewshot", spec.num_fewshot), spec.hub
        results.append(EvalResult(
            task_type="text-generation", task_name="Text Generation",
            dataset_type=hub.type, dataset_name=f"{hub.name} ({shots}-Shot)",
            dataset_config=hub.config, dataset_split=row.get("split", hub.split),
            dataset_args={"num_few_shot": shots}, metric_type=spec.leaderboard_metric,
            metric_name=spec.metric_name, metric_value=round(100 * row["value"], 2),
        ))
    return results


def reference_rows() -> dict[str, Any]:
    """Published comparison rows (percent) with their source, from model_card/."""
    ref = yaml.safe_load(REFERENCES.read_text(encoding="utf-8"))
    rows = [{"label": m["label"], "hub_id": m["hub_id"], "note": m.get("note"),
             "note_ko": m.get("note_ko"),
             "scores": [_ref_score(m["scores"].get(t)) for t in TASK_ORDER]}
            for m in ref["models"]]
    return {"rows": rows, "source_name": ref["source_name"], "source_url": ref["source_url"],
            "missing": ref.get("missing", [])}


def _ref_score(value) -> str:
    """A published score in percent; a task without a recorded number shows a dash."""
    return "–" if value is None else f"{value:.2f}"
