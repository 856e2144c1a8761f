"""`a3duck inspect`: summary numbers from the adapter file and legible PNG plots."""

import json

import torch

from a3duck import models
from a3duck.cli import main


def test_inspect_summarises_and_plots(tiny_llama_dir, tmp_path, capsys):
    base, _ = models.load_base(str(tiny_llama_dir), dtype=torch.float32)
    peft_model = models.attach_ia3(base)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "ia3_l" in name:
                p.fill_(1.25 if "v_proj" in name else 1.0)
    peft_model.save_pretrained(tmp_path / "adapter")
    assert main(["inspect", str(tmp_path / "adapter"), "--output-dir", str(tmp_path / "plots")]) == 0
    summary = json.loads((tmp_path / "plots" / "inspect.json").read_text())
    assert summary["trainable_parameters"] == 384 and summary["layers"] == 2
    assert summary["modules"]["v_proj"]["mean_abs_change"] == 0.25
    assert summary["modules"]["k_proj"]["mean_abs_change"] == 0.0
    for name in ("ia3_heatmap.png", "ia3_distribution.png", "ia3_layers.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert "trainable parameters: 384 over 2 layers" in capsys.readouterr().out
