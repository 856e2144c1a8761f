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


def command(*argv, timeout=1500):
    out = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def run(*args, timeout=1500):
    return command("-m", "a3duck", "train", *args, timeout=timeout)


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

    downstream_commands_take_the_dpo_adapter_unchanged(adapter, sft, embedded_model_dir, tmp_path)


def downstream_commands_take_the_dpo_adapter_unchanged(adapter, sft, base_dir, tmp_path):
    """compare, inspect, card, mix, the staged upload and the Space, on the DPO adapter as is."""
    compare = tmp_path / "compare.json"
    command("-m", "a3duck", "compare", "--adapter", str(adapter), "--data",
            "data/demo/eval.jsonl", "--limit", "1", "--max-new-tokens", "4",
            "--output", str(compare))
    assert len(json.loads(compare.read_text())["rows"]) == 1
    assert "trainable parameters" in command("-m", "a3duck", "inspect", str(adapter)).stdout
    command("-m", "a3duck", "card", "--adapter", str(adapter))
    card = (adapter / "README.md").read_text()
    assert "→ DPO on" in card and "pairs_train.jsonl" in card and str(tmp_path) not in card
    command("-m", "a3duck", "mix", "--adapter", f"{adapter}:0.5", "--adapter", f"{sft}:0.5",
            "--output-dir", str(tmp_path / "mixed"))
    assert (tmp_path / "mixed" / "adapter_model.safetensors").is_file()
    staged = tmp_path / "staged"
    command("push_to_hub.py", "--adapter-dir", str(adapter), "--dry-run", "--staging-dir",
            str(staged))
    assert (staged / "adapter_model.safetensors").read_bytes() == (
        adapter / "adapter_model.safetensors").read_bytes()

    from space_support import load_runtime

    runtime = load_runtime(base_dir, adapter)
    assert runtime.template.name == "chat"  # the SFT adapter's template, recorded through DPO
