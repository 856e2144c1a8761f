"""Smoke test of bench/serve.py: mixed batches and one-at-a-time give the same texts (tiny)."""

import json

from test_bench_smoke import ok, run_bench


def test_serve_bench_mixed_equals_serial(tiny_llama_dir, tmp_path):
    out = tmp_path / "serve.json"
    ok(run_bench("serve.py", "--model", str(tiny_llama_dir), "--chats", "4", "--new-tokens", "4",
                 "--rounds", "1", "--threads", "1", "--output", str(out)))
    result = json.loads(out.read_text())["result"]
    assert result["equal_texts"] == "4/4" and result["batches"] == [4]
    assert result["mixed_tokens_per_s"] > 0 and result["serial_tokens_per_s"] > 0
