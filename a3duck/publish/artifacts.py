"""The adapter folder's facts for the model card: parameter counts (from the weights file and
the base config, no weights loaded), the recipe's hyperparameters, the training run's metrics
and the data report. Nothing here renders; :mod:`a3duck.publish.card` does."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from a3duck import adapter_folder
from a3duck.publish import CardError

log = logging.getLogger(__name__)


HYPERPARAMETERS = (  # (config field, shown name) in the order of the published table
    ("learning_rate", "learning rate"), ("lr_scheduler", "lr scheduler"),
    ("batch_size", "batch size"), ("micro_batch_size", "micro-batch size"),
    ("warmup_steps", "warmup steps"), ("num_epochs", "epochs"), ("max_steps", "max steps"),
    ("weight_decay", "weight decay"), ("cutoff_len", "cutoff length"),
    ("train_on_inputs", "train on inputs"), ("add_eos_token", "add eos token"),
    ("group_by_length", "group by length"), ("packing", "packing"),
    ("prompt_template", "prompt template"), ("precision", "precision"), ("seed", "seed"),
)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CardError(f"{path} is not valid JSON ({exc})") from None


def parameter_counts(adapter_dir: Path, base: str) -> dict[str, Any] | None:
    """Trainable count from the adapter file; base total from the base config (meta device)."""
    trainable = sum(t.numel() for t in adapter_folder.tensors(adapter_dir).values())
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

    if base == embedded.EMBEDDED_MODEL_ID:  # the local copy: no Hub round trip (slow offline)
        config = AutoConfig.from_pretrained(embedded.prepare())
    else:
        try:
            config = AutoConfig.from_pretrained(base, trust_remote_code=False)
        except (OSError, ValueError):  # offline cache miss
            log.warning("base config for %s unavailable: parameter fraction not computed", base)
            return None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def hyperparameters(config: dict | None) -> list[tuple[str, str]]:
    if not config:
        return []
    return [(label, _fmt(config[key])) for key, label in HYPERPARAMETERS if key in config]


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def train_metrics(adapter_dir: Path) -> dict[str, str] | None:
    m = adapter_folder.train_metrics(adapter_dir)
    if m is None:
        return None
    shown = {
        "optimizer steps": m.get("steps"), "training tokens": m.get("train_tokens"),
        "tokens / second": m.get("train_tokens_per_second"),
        "wall time (s)": m.get("wall_seconds"), "final loss": m.get("final_loss"),
    }
    return {k: (f"{v:,.4g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else v)
            for k, v in shown.items() if v is not None}


def data_report(adapter_dir: Path) -> dict[str, str] | None:
    report = adapter_folder.data_report(adapter_dir)
    if report is None:
        return None
    return {k: str(v) for k, v in report.items() if isinstance(v, (int, float, str, bool))}
