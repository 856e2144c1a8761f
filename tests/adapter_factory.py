"""Build small, real IA3 adapter folders (the layout `a3duck train` writes) for card/hub tests."""

from __future__ import annotations

import json
from pathlib import Path

EVAL_FIXTURE = Path(__file__).parent / "data" / "eval_results_fixture.json"


def make_adapter(base_dir: Path, out_dir: Path, base_id: str | None = None,
                 data: str = "garage-bAInd/Open-Platypus") -> Path:
    """Tiny-Llama IA3 adapter with perturbed vectors (so it differs from the base), tokenizer,
    resolved config and train metrics. ``base_id`` is recorded as the base (a Hub id)."""
    import torch

    from a3duck import models
    from a3duck.adapter_folder import TRAIN_CONFIG
    from a3duck.config import TrainConfig, save_config

    torch.manual_seed(0)
    base, _ = models.load_base(str(base_dir), dtype=torch.float32)
    model = models.attach_ia3(base)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ia3_l" in name:
                p.mul_(1.0 + 0.5 * torch.rand_like(p))
    model.save_pretrained(out_dir)
    models.load_tokenizer(str(base_dir)).save_pretrained(out_dir)
    recorded = base_id or str(base_dir)
    cfg_path = out_dir / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = recorded
    cfg_path.write_text(json.dumps(cfg, indent=2))
    save_config(TrainConfig(base_model=recorded, data=data, max_steps=3, learning_rate=4e-3),
                out_dir / TRAIN_CONFIG)
    (out_dir / "train_metrics.json").write_text(json.dumps({
        "steps": 3, "train_tokens": 1536, "train_tokens_per_second": 812.5,
        "wall_seconds": 1.89, "peak_memory_bytes": 0,
        "loss_history": [{"step": 1, "loss": 6.1}, {"step": 3, "loss": 5.8}], "final_loss": 5.8,
    }))
    return out_dir
