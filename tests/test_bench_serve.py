"""Smoke test of bench/serve.py (tiny Llama): every system answers the whole load, the rows and
memory columns are there, and the engine's greedy answers equal PEFT's and the scheduler's."""

import json

import pytest
from bench_support import ok, run_bench


@pytest.mark.slow  # spawns a subprocess
def test_serve_bench_rows_and_equal_answers(tiny_llama_dir, tmp_path):
    out = tmp_path / "serve.json"
    ok(run_bench("serve.py", "--model", str(tiny_llama_dir), "--adapters", "1,3",
                 "--requests", "4", "--new-tokens", "4", "--concurrency", "2", "--threads", "1",
                 "--dtype", "float32", "--output", str(out)))
    rows = json.loads(out.read_text())["rows"]
    assert [(r["adapters"], r["system"]) for r in rows] == [
        (0, "base alone"), (1, "engine"), (1, "scheduler"), (1, "peft"), (3, "engine"),
        (3, "scheduler"), (3, "peft"), (0, "base alone")]
    for row in rows:
        assert row["tokens"] > 0 and row["tokens_per_s"] > 0 and row["ttft_p50_ms"] > 0
        if row["system"] in ("scheduler", "peft"):
            assert row["equal_to_engine"] == "4/4", row
    engine3 = rows[4]
    per_adapter = engine3["vector_bytes"] / 3
    assert engine3["held_bytes"] == (3 + 1) * per_adapter  # K slots and the base's (ones)
