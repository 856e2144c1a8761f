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
from a3duck.config import CONFIG_FILENAME, atomic_write_text
from a3duck.models import ADAPTER_CONFIG, ADAPTER_WEIGHTS, read_adapter_config
from a3duck.publish.card_results import (
    TASK_ORDER,
    TASKS,
    CardError,
    dash,
    eval_table,
    load_eval_results,
    model_index_results,
    read_json,
    write_hub_eval_results,
)

log = logging.getLogger(__name__)

# The templates live in the repository's top-level model_card/ (a promised location); the wheel
# carries the same files inside the package (pyproject maps model_card/ to a3duck/publish/model_card).
_PACKAGED = Path(__file__).resolve().parent / "model_card"
TEMPLATE_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[2] / "model_card"
REFERENCES = TEMPLATE_DIR / "reference_results.yaml"
DEFAULT_REPO_ID = "DopeorNope/A3_duck"
LANGS = ("en", "ko")


HYPERPARAMETERS = (  # (config field, shown name) in the order of the published table
    ("learning_rate", "learning rate"), ("lr_scheduler", "lr scheduler"),
    ("batch_size", "batch size"), ("micro_batch_size", "micro-batch size"),
    ("warmup_steps", "warmup steps"), ("num_epochs", "epochs"), ("max_steps", "max steps"),
    ("weight_decay", "weight decay"), ("cutoff_len", "cutoff length"),
    ("train_on_inputs", "train on inputs"), ("add_eos_token", "add eos token"),
    ("group_by_length", "group by length"), ("packing", "packing"),
    ("prompt_template", "prompt template"), ("precision", "precision"), ("seed", "seed"),
)


def add_arguments(parser) -> None:
    parser.add_argument("--adapter", "--adapter-dir", dest="adapter", required=True,
                        help="adapter folder (from `a3duck train`); README.md is written into it")
    parser.add_argument("--eval-results", default=None,
                        help="eval_results.json from `a3duck eval` (default: one in the adapter "
                             "folder or its parent); missing means 'not evaluated'")
    parser.add_argument("--contamination", default=None,
                        help="JSON report from `a3duck check-contamination` to include")
    parser.add_argument("--repo-id", default=DEFAULT_REPO_ID,
                        help=f"Hub repo the card describes (default {DEFAULT_REPO_ID})")
    parser.add_argument("--lang", choices=LANGS, default="en", help="card language (en or ko)")
    parser.add_argument("--output", default=None,
                        help="write the card here instead of ADAPTER/README.md")


def run(args) -> int:
    adapter_dir = Path(args.adapter)
    card = render_card(adapter_dir, repo_id=args.repo_id, eval_results=args.eval_results,
                       contamination=args.contamination, lang=args.lang)
    out = Path(args.output) if args.output else adapter_dir / "README.md"
    atomic_write_text(out, str(card))
    print(f"model card written: {out}")
    hub_file = write_hub_eval_results(out.parent, load_eval_results(args.eval_results,
                                                                    adapter_dir, ""))
    if hub_file:
        print(f"Hub eval results written: {hub_file}")
    return 0


def render_card(adapter_dir: Path, *, repo_id: str = DEFAULT_REPO_ID,
                eval_results: str | Path | None = None, contamination: str | Path | None = None,
                lang: str = "en"):
    """Render the card for ``adapter_dir``; returns a ``huggingface_hub.ModelCard``."""
    from huggingface_hub import ModelCard, ModelCardData

    if lang not in LANGS:
        raise CardError(f"--lang must be one of {', '.join(LANGS)}, got {lang!r}")
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
    config = _read_yaml(adapter_dir / CONFIG_FILENAME)
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
        "train": _train_metrics(adapter_dir), "data_report": _data_report(adapter_dir),
        "contamination": contamination_summary(contamination),
        "eval": eval_table(eval_raw), "eval_raw": eval_raw,
        "references": reference_rows(), "plots": sorted(
            p.relative_to(adapter_dir).as_posix() for p in adapter_dir.glob("plots/*.png")),
    }


def is_hub_id(name: str) -> bool:
    """'owner/name' with no file extension and no path syntax."""
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", name or "")) and not re.search(
        r"\.(jsonl?|parquet|csv|txt)$", name) and not name.startswith(".")


def _display_dataset(name: str) -> str | None:
    if not name:
        return None
    return name if is_hub_id(name) else f"{Path(name).name} (a local file)"


def _names(value) -> str:
    if value is None:
        return "PEFT default"
    return ", ".join(sorted(value)) if isinstance(value, (list, set, tuple)) else str(value)


def _read_yaml(path: Path) -> dict | None:
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None


def parameter_counts(adapter_dir: Path, base: str) -> dict[str, Any] | None:
    """Trainable count from the adapter file; base total from the base config (meta device)."""
    from safetensors import safe_open

    weights = adapter_dir / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise CardError(f"{adapter_dir}: {ADAPTER_WEIGHTS} is missing")
    trainable = 0
    with safe_open(str(weights), framework="pt") as fh:
        for key in fh.keys():  # noqa: SIM118 - safe_open is not iterable
            n = 1
            for dim in fh.get_slice(key).get_shape():
                n *= dim
            trainable += n
    total = base_parameter_count(base)
    out = {"trainable": f"{trainable:,}", "total": None, "percent": None}
    if total:
        out["total"] = f"{total:,}"
        out["percent"] = f"{100 * trainable / (total + trainable):.4f}"  # as PEFT reports it
    return out


def base_parameter_count(base: str) -> int | None:
    """Parameters of the base model, from its config alone (no weights loaded); None if the
    config cannot be found (offline and not cached)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from a3duck import embedded

    try:
        config = AutoConfig.from_pretrained(base, trust_remote_code=False)
    except (OSError, ValueError):  # offline cache miss: only the embedded default has a fallback
        if base != embedded.EMBEDDED_MODEL_ID:
            log.warning("base config for %s unavailable: parameter fraction not computed", base)
            return None
        config = AutoConfig.from_pretrained(embedded.prepare())
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def hyperparameters(config: dict | None) -> list[tuple[str, str]]:
    if not config:
        return []
    return [(label, _fmt(config[key])) for key, label in HYPERPARAMETERS if key in config]


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _train_metrics(adapter_dir: Path) -> dict[str, str] | None:
    path = adapter_dir / "train_metrics.json"
    if not path.is_file():
        return None
    m = read_json(path)
    shown = {
        "optimizer steps": m.get("steps"), "training tokens": m.get("train_tokens"),
        "tokens / second": m.get("train_tokens_per_second"),
        "wall time (s)": m.get("wall_seconds"), "final loss": m.get("final_loss"),
    }
    return {k: (f"{v:,.4g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else v)
            for k, v in shown.items() if v is not None}


def _data_report(adapter_dir: Path) -> dict[str, str] | None:
    path = adapter_dir / "data_report.json"
    if not path.is_file():
        return None
    report = read_json(path)
    return {k: str(v) for k, v in report.items() if isinstance(v, (int, float, str, bool))}


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
    rows = [{"name": TASKS.get(name, {}).get("title", name), "status": b.get("status", "?"),
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
             "scores": [f"{m['scores'][t]:.2f}" for t in TASK_ORDER]} for m in ref["models"]]
    return {"rows": rows, "source_name": ref["source_name"], "source_url": ref["source_url"],
            "missing": ref.get("missing", [])}
