"""`bench/eval.py --suite` end to end on the tiny model: the report, never the timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tiny_with_real_tokenizer(tokenizer_dir, out):
    """A one-layer random Llama with the embedded model's tokenizer: real token counts (an MMLU
    5-shot context is ~600 tokens, within its 2,048 positions), next to no compute."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.slow  # spawns a subprocess
def test_suite_smoke_on_tiny_model(embedded_model_dir, shared_data, tmp_path):
    model = _tiny_with_real_tokenizer(embedded_model_dir, tmp_path / "model")
    out = tmp_path / "suite.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "eval.py"), "--suite", "--model",
         str(model), "--data-dir", str(shared_data), "--tasks", "mmlu,truthfulqa_mc2",
         "--mmlu-subjects", "anatomy,astronomy", "--limit", "3", "--batch-size", "2",
         "--output", str(out)],
        check=False, capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    rows = {r["task"]: r for r in report["tasks"]}
    assert list(rows) == ["mmlu", "truthfulqa_mc2", "suite"] and report["suite"]
    assert rows["mmlu"]["tasks"] == 2 and rows["mmlu"]["docs"] == 6
    assert rows["mmlu"]["requests"] == 24  # four letters per question
    for row in rows.values():
        assert row["max_abs_delta_loglik"] <= 1e-4 and row["is_greedy_mismatches"] == 0
        assert row["hf"] == row["a3duck"]
        assert 0 < row["tokens_a3duck"] < row["tokens_plain"]
    # three questions per subject share the five shots: read once, not three times
    assert rows["mmlu"]["tokens_ratio"] > 2
    assert "| suite |" in proc.stdout


@pytest.mark.slow  # spawns a subprocess
def test_process_bench_smoke_on_tiny_model(embedded_model_dir, shared_data, tmp_path):
    """`bench/eval_process.py`: two whole `a3duck eval` processes, equal rows, a ratio."""
    model = _tiny_with_real_tokenizer(embedded_model_dir, tmp_path / "model")
    out = tmp_path / "process.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "eval_process.py"), "--tasks", "arc_challenge",
         "--limit", "2", "--rounds", "1", "--data-dir", str(shared_data), "--output", str(out),
         "--", "--base-model", str(model), "--batch-size", "2"],
        check=False, capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    report = json.loads(out.read_text())
    assert report["identical_results"] is True
    assert [b["backend"] for b in report["backends"]] == ["hf", "a3duck"]
    assert all(b["wall_s"] > 0 and b["cpu_s"] > 0 for b in report["backends"])
    assert list(report["results"]) == ["base/arc_challenge"]
    assert 0 <= report["results"]["base/arc_challenge"] <= 1
    assert "--base-model" in report["command"] and str(tmp_path) not in report["command"]
