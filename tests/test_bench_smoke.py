"""Smoke tests of bench/: each script runs end to end at tiny sizes on the tiny random Llama and
writes the JSON it promises. No timing is asserted; results equality is (packed vs original
losses, merged vs unmerged tokens, static vs dynamic cache tokens)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "train.jsonl"


def run_bench(script: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


def ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_train_bench_fast_and_lora_losses_equal_original(tiny_llama_dir, tmp_path):
    out = tmp_path / "train.json"
    ok(run_bench("train.py", "--model", str(tiny_llama_dir), "--examples", "8", "--steps", "2",
                 "--rounds", "1", "--check-examples", "4", "--data", str(DEMO), "--threads", "1",
                 "--output", str(out)))
    result = json.loads(out.read_text())
    assert {"benchmark", "model", "sources", "settings", "machine", "summary", "runs"} <= set(result)
    rows = {r["variant"]: r for r in result["summary"]}
    assert set(rows) == {"original", "fast", "lora"}
    for row in rows.values():
        assert {"tokens_per_second", "loss_tokens_per_second", "peak_memory_gib",
                "speedup_vs_original", "memory_vs_original", "check_loss_rel_diff"} <= set(row)
        assert row["examples"] == 8 and row["truncated_examples"] == 0
        assert row["input_tokens"] == rows["original"]["input_tokens"]  # same data everywhere
        assert row["check_loss_tokens"] == rows["original"]["check_loss_tokens"] > 0
        # Packing and a fresh LoRA (B = 0) leave the loss of every token unchanged.
        assert row["check_loss_rel_diff"] < 1e-5 and row["same_data"] is True
    assert rows["original"]["optimizer_steps"] == 2
    assert rows["fast"]["trainable_parameters"] == rows["original"]["trainable_parameters"]
    assert rows["lora"]["trainable_parameters"] > rows["original"]["trainable_parameters"]
    assert result["sources"] == {"data/demo/train.jsonl": 8}


def test_train_bench_random_shape_and_bad_arguments(tiny_llama_dir, tmp_path):
    out = tmp_path / "shape.json"
    ok(run_bench("train.py", "--model-shape", "tiny", "--tokenizer", str(tiny_llama_dir),
                 "--variants", "original,fast", "--examples", "4", "--steps", "1", "--rounds", "1",
                 "--check-examples", "2", "--data", str(DEMO), "--threads", "1",
                 "--output", str(out)))
    result = json.loads(out.read_text())
    assert result["model"] == "random-init tiny"
    assert [r["variant"] for r in result["summary"]] == ["original", "fast"]
    assert result["summary"][1]["check_loss_rel_diff"] < 1e-5
    bad = run_bench("train.py", "--examples", "10", "--steps", "3")
    assert bad.returncode == 2 and "multiple of --steps" in bad.stderr
    bad = run_bench("train.py", "--model-shape", "llama2-70b")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


@pytest.mark.parametrize("source", ["dir", "shape"])
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


def test_gpu_script_parses_and_needs_an_outdir():
    assert subprocess.run(["bash", "-n", str(ROOT / "bench" / "gpu.sh")], check=False).returncode == 0
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh")], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "usage: bench/gpu.sh OUTDIR" in proc.stderr
