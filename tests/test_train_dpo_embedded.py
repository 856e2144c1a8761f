"""End to end on the embedded SmolLM2: SFT demo adapter -> `a3duck train --method dpo` (CLI)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(*args, timeout=1500):
    out = subprocess.run([sys.executable, "-m", "a3duck", "train", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_dpo_demo_recipe_from_the_sft_demo_adapter(embedded_model_dir, tmp_path):
    run("--recipe", "recipes/smollm2-demo.yaml", "--output-dir", str(tmp_path / "sft"),
        "--max-steps", "2", "--batch-size", "4", "--micro-batch-size", "4")
    sft = tmp_path / "sft" / "adapter"
    out = run("--recipe", "recipes/smollm2-dpo-demo.yaml", "--init-adapter", str(sft),
              "--output-dir", str(tmp_path / "dpo"), "--max-steps", "1", "--warmup-steps", "0",
              "--batch-size", "4", "--micro-batch-size", "4")
    assert "margin 0.0000" in out.stderr  # the training log line shows margin and accuracy
    adapter = tmp_path / "dpo" / "adapter"
    first = json.loads((adapter / "train_metrics.json").read_text())["loss_history"][0]
    # policy = reference at the first step; bf16 autocast (precision auto) where the CPU has it:
    # the policy and the reference forward are the same computation, so bf16 stays exact too.
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-3)
    assert first["rewards/margins"] == pytest.approx(0.0, abs=1e-3)
    recorded = yaml.safe_load((adapter / "a3duck_config.yaml").read_text())
    assert (recorded["method"], recorded["reference"]) == ("dpo", "init_adapter")
    assert len(recorded["init_adapter_sha256"]) == 64

    from peft import IA3Config, PeftModel
    from transformers import AutoModelForCausalLM

    # Plain PEFT on the local copy of the recorded base (the Hub is offline here; test_train_dpo.py
    # loads a tiny-Llama DPO adapter with AutoPeftModelForCausalLM, whose base is a local path).
    base = AutoModelForCausalLM.from_pretrained(str(embedded_model_dir))
    model = PeftModel.from_pretrained(base, str(adapter))
    assert isinstance(model.peft_config["default"], IA3Config)
