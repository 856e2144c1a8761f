"""Smoke tests of bench/: each script runs end to end at tiny sizes on the tiny random Llama and
writes the JSON it promises. No timing is asserted; results equality is (packed vs original
losses, merged vs unmerged tokens, static vs dynamic cache tokens)."""

import json
import subprocess
from pathlib import Path

import pytest
from bench_support import ok, run_bench

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "train.jsonl"


@pytest.mark.slow  # spawns a subprocess
def test_train_bench_reference_fast_and_lora_losses_agree(embedded_model_dir, tmp_path):
    # A tiny random Llama with SmolLM2's tokenizer, which tokenizes the original script's joint
    # prompt+answer text and a3duck's separate prompt / answer to the same ids.
    out = tmp_path / "train.json"
    ok(run_bench("train.py", "--model-shape", "tiny", "--tokenizer", str(embedded_model_dir),
                 "--variants", "reference,fast,lora", "--examples", "8", "--steps", "2",
                 "--rounds", "1", "--check-examples", "4", "--data", str(DEMO), "--threads", "1",
                 "--fast-precision", "fp32", "--output", str(out)))
    result = json.loads(out.read_text())
    assert {"benchmark", "model", "sources", "settings", "machine", "summary",
            "runs"} <= set(result)
    assert result["model"] == "random-init tiny"
    rows = {r["variant"]: r for r in result["summary"]}
    assert list(rows) == ["reference", "fast", "lora"]
    for row in rows.values():
        assert {"tokens_per_second", "loss_tokens_per_second", "peak_memory_gib", "speedup",
                "memory_ratio", "check_loss", "check_loss_rel_diff"} <= set(row)
        assert row["examples"] == 8 and row["truncated_examples"] == 0
        assert row["baseline"] == "reference" and row["same_data"] is True
        assert row["check_loss_tokens"] == rows["reference"]["check_loss_tokens"] > 0
        # Same precision: packing, the label-positions loss and a fresh LoRA (B = 0) change no
        # token's loss against the original script's path.
        assert row["check_loss_rel_diff"] < 1e-5
    assert rows["reference"]["optimizer_steps"] == 2
    fast = rows["fast"]["fast_path"]
    assert fast["precision"] == "float32" and fast["attn_implementation"] == "sdpa_varlen"
    assert fast["loss"] == "label_positions"
    assert rows["fast"]["trainable_parameters"] < rows["lora"]["trainable_parameters"]
    assert result["sources"] == {"data/demo/train.jsonl": 8}


@pytest.mark.slow  # spawns a subprocess
def test_train_bench_shipped_recipe_and_bad_arguments(tiny_llama_dir, tmp_path):
    from a3duck.fastpath import cpu_bf16_flags

    out = tmp_path / "recipe.json"
    ok(run_bench("train.py", "--model", str(tiny_llama_dir), "--variants", "reference,fast",
                 "--examples", "4", "--steps", "1", "--rounds", "1", "--check-examples", "2",
                 "--data", str(DEMO), "--threads", "1", "--output", str(out)))
    ref, fast = json.loads(out.read_text())["summary"]
    assert (ref["variant"], fast["variant"]) == ("reference", "fast")
    # The recipe's precision: auto is bf16 exactly on CPUs with bf16 units.
    assert fast["fast_path"]["precision"] == ("bfloat16" if cpu_bf16_flags() else "float32")
    assert fast["examples"] == ref["examples"] == 4 and fast["tokens_per_second"] > 0
    # SentencePiece: the original tokenizes prompt+answer jointly, a3duck separately; the
    # boundary may differ by a token per example, never more.
    assert abs(fast["input_tokens"] - ref["input_tokens"]) <= 4
    bad = run_bench("train.py", "--examples", "10", "--steps", "3")
    assert bad.returncode == 2 and "multiple of --steps" in bad.stderr
    bad = run_bench("train.py", "--model-shape", "llama2-70b")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    bad = run_bench("train.py", "--variants", "reference,original@sdpa")
    assert bad.returncode == 2 and "unknown variant" in bad.stderr


@pytest.mark.parametrize("source", ["dir", "shape"])
@pytest.mark.slow  # spawns a subprocess
def test_generate_bench_merged_equals_unmerged(tiny_llama_dir, tmp_path, source):
    out = tmp_path / "generate.json"
    model = (["--model", str(tiny_llama_dir)] if source == "dir"
             else ["--model-shape", "tiny"])
    ok(run_bench("generate.py", *model, "--prompt-tokens", "12", "--new-tokens", "4",
                 "--rounds", "1", "--threads", "1", "--output", str(out)))
    result = json.loads(out.read_text())
    assert {"benchmark", "model", "settings", "machine", "summary", "checks"} <= set(result)
    cells = {(r["mode"], r["variant"]) for r in result["summary"]}
    assert cells == {(m, v) for m in ("dynamic", "static") for v in ("base", "unmerged", "merged")}
    for row in result["summary"]:
        assert row["ttft_seconds"] > 0 and row["decode_tokens_per_second"] > 0
    checks = result["checks"]
    assert checks["merged_equals_unmerged[dynamic]"] and checks["merged_equals_unmerged[static]"]
    assert all(checks[f"static_equals_dynamic[{v}]"] for v in ("base", "unmerged", "merged"))


@pytest.mark.slow  # spawns a subprocess
def test_gpu_script_parses_and_needs_an_outdir():
    assert subprocess.run(["bash", "-n", str(ROOT / "bench" / "gpu.sh")], check=False).returncode == 0
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh")], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "usage: bench/gpu.sh OUTDIR" in proc.stderr
