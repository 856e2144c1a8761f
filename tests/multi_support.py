"""Helpers for the mixed-adapter and mix tests: distinct small IA3 adapters on one base."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def random_adapter(base_dir: Path, out: Path, seed: int, target_modules=None,
                   feedforward_modules=None, base_id: str | None = None) -> Path:
    """An IA3 adapter whose vectors are random around 1 (seeded), saved like `a3duck train`."""
    from a3duck import models
    from a3duck.adapter_folder import TRAIN_CONFIG
    from a3duck.config import TrainConfig, save_config

    base, _ = models.load_base(str(base_dir), dtype=torch.float32)
    peft_model = models.attach_ia3(base, target_modules, feedforward_modules)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "ia3_l" in name:
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
    peft_model.save_pretrained(out)
    models.load_tokenizer(str(base_dir)).save_pretrained(out)
    recorded = base_id or str(base_dir)
    cfg = json.loads((out / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = recorded
    (out / "adapter_config.json").write_text(json.dumps(cfg, indent=2))
    save_config(TrainConfig(base_model=recorded), out / TRAIN_CONFIG)
    return out


def peft_model(base_dir: Path, adapter_dir: Path | None):
    """The reference: the adapter's own PeftModel (or the plain base), fp32, eval mode."""
    from a3duck import models

    model, _ = models.load(str(base_dir), str(adapter_dir) if adapter_dir else None,
                           dtype=torch.float32, device="cpu")
    return model
