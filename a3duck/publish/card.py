"""`a3duck card`: render the model card (README.md) of an adapter folder.

The card is rendered from the adapter folder's artifacts only (:mod:`a3duck.adapter_folder`:
PEFT's config and weights, the training config, metrics and data report, the eval results) and
a contamination report when given, through ``huggingface_hub.ModelCard.from_template`` with the
Jinja templates in ``model_card/``. Nothing is invented: an absent eval file renders as "not
evaluated", ``--limit`` rows are marked partial and kept out of the ``model-index`` metadata.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import yaml

from a3duck import __version__, adapter_folder
from a3duck.config import MIX_KEY
from a3duck.errors import A3DuckError
from a3duck.evaluation.leaderboard import LEADERBOARD_TASKS
from a3duck.files import is_hub_id, public_name
from a3duck.publish import DEFAULT_REPO_ID, CardError
from a3duck.publish.artifacts import (
    data_report,
    hyperparameters,
    lineage,
    parameter_counts,
    read_json,
    train_metrics,
)
from a3duck.publish.card_results import (
    TASK_ORDER,
    dash,
    eval_table,
    load_eval_results,
    long_title,
    model_index_results,
)
from a3duck.sources import parse_sources

log = logging.getLogger(__name__)

# The templates live in the repository's top-level model_card/ (a promised location); the wheel
# carries the same files inside the package (pyproject maps model_card/ to a3duck/publish/model_card).
_PACKAGED = Path(__file__).resolve().parent / "model_card"
TEMPLATE_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[2] / "model_card"
REFERENCES = TEMPLATE_DIR / "reference_results.yaml"
LANGS = ("en", "ko")




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
        base_model=ctx["base_model"] if ctx["base_link"] else None, library_name="peft", pipeline_tag="text-generation",
        license="mit", language=["en"], datasets=ctx["datasets"] or None,
        tags=["ia3", "peft", adapter_folder.CARD_TAG, "text-generation"],
        model_name=repo_id.split("/")[-1],
        eval_results=model_index_results(ctx["eval_raw"]) or None,
    )
    template = TEMPLATE_DIR / f"README.{lang}.md.jinja"
    card = ModelCard.from_template(data, template_path=str(template), **ctx)
    return ModelCard(re.sub(r"\n{3,}", "\n\n", str(card)))  # template blocks leave blank runs


def write_local_card(folder: Path, name: str) -> None:
    """The card of a local adapter not (yet) on the Hub, e.g. a mix (it says it is a mix)."""
    render_card(folder, repo_id=f"local/{name}").save(str(Path(folder) / adapter_folder.CARD))


def card_context(adapter_dir: Path, repo_id: str, eval_results, contamination) -> dict[str, Any]:
    """Every fact the templates show, pre-formatted; None where a fact is unavailable."""
    adapter_folder.require(adapter_dir, CardError)
    adapter_cfg = adapter_folder.read_config(adapter_dir)
    base = adapter_folder.recorded_base(adapter_dir) or ""
    config = adapter_folder.train_record(adapter_dir)
    eval_raw = load_eval_results(eval_results, adapter_dir, base)
    sources = _data_sources(config)
    return {
        # a local base is shown by its folder's name, never its path, and is not linked
        "repo_id": repo_id, "base_model": public_name(base) or base,
        "base_link": f"https://huggingface.co/{base}" if is_hub_id(base) else None,
        "a3duck_version": __version__,
        "params": parameter_counts(adapter_dir, base),
        "target_modules": _names(adapter_cfg.get("target_modules")),
        "feedforward_modules": _names(adapter_cfg.get("feedforward_modules")),
        "hyperparameters": hyperparameters(config),
        "dataset": ", ".join(_display_dataset(s) for s in sources) or None,
        "datasets": [s for s in sources if is_hub_id(s)],
        "template": (config or {}).get("prompt_template", "alpaca"),
        "train": train_metrics(adapter_dir), "data_report": data_report(adapter_dir),
        "contamination": contamination_summary(contamination),
        "eval": eval_table(eval_raw), "eval_raw": eval_raw,
        "mix": _public_mix((config or {}).get(MIX_KEY)),
        "lineage": lineage(adapter_dir),
        "task_headers": [spec.card_header for spec in LEADERBOARD_TASKS.values()],
        "references": reference_rows(), "plots": sorted(
            p.relative_to(adapter_dir).as_posix()
            for p in adapter_dir.glob(f"{adapter_folder.PLOTS}/*.png")),
    }


def _public_mix(mix: dict | None) -> dict | None:
    """The mix record with each local source named by its display name (its run folder's,
    :mod:`a3duck.adapter_names`), never its path; the sha256 identifies it."""
    from a3duck.adapter_names import default_name

    def shown(src: str) -> str:
        return default_name(src) if Path(src).expanduser().is_dir() else public_name(src)

    if not mix:
        return mix
    return {**mix, "sources": [{**s, "adapter": shown(str(s.get("adapter")))}
                               for s in mix.get("sources") or []]}


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


def _data_sources(config: dict | None) -> list[str]:
    """The paths of the recorded ``data`` (one source, or every source of a mixture)."""
    data = (config or {}).get("data")
    if not data:
        return []
    try:
        return [s.path for s in parse_sources(data)]
    except A3DuckError:
        return [str(data)]


def _display_dataset(name: str) -> str:
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
    rows = [{"name": long_title(name), "status": b.get("status", "?"),
             "questions": dash(b.get("questions")), "exact": dash(b.get("exact_duplicates")),
             "near": dash(b.get("near_duplicates")),
             "matched": dash(b.get("contaminated_questions"))}
            for name, b in report["benchmarks"].items()]
    return {"method": report.get("method", "not stated"),
            "threshold": report.get("threshold", "not stated"), "rows": rows,
            "flagged": dash(report.get("flagged_training_rows")),
            "total": dash(report.get("training_rows"))}


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
