"""End to end on the embedded real SmolLM2: the CLI trains a working adapter from the demo recipe."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_prepare_model_prints_path_last(embedded_model_dir):
    out = subprocess.run([sys.executable, "-m", "a3duck", "prepare-model"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == str(embedded_model_dir)
    record = json.loads((embedded_model_dir / "a3duck_embedded.json").read_text())
    assert record["hub_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_demo_recipe_trains_a_working_adapter(embedded_model_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "a3duck", "train", "--recipe", "recipes/smollm2-demo.yaml",
         "--output-dir", str(tmp_path), "--max-steps", "2", "--save-steps", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    adapter = tmp_path / "adapter"
    assert out.stdout.strip().splitlines()[-1] == str(adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert config["peft_type"] == "IA3"
    assert sorted(config["target_modules"]) == ["down_proj", "k_proj", "v_proj"]
    metrics = json.loads((adapter / "train_metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["train_tokens"] > 1000

    import a3duck

    model, tok = a3duck.load(adapter=str(adapter))
    ids = tok("### Instruction:\nWhat is the capital of Peru?\n\n### Response:\n",
              return_tensors="pt")["input_ids"]
    with torch.no_grad():
        tuned = model(ids).logits
        with model.disable_adapter():
            base = model(ids).logits
    assert not torch.allclose(tuned, base, atol=1e-4)  # the adapter changes the real model
    # 30 layers x (k 192 + v 192 + down_proj 1536) = 57,600 IA3 scales on SmolLM2-135M
    assert sum(p.numel() for n, p in model.named_parameters() if "ia3_l" in n) == 57_600
