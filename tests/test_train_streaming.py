"""Streaming data: validated and tokenised on the fly, packed, max_steps required, resumable."""

import json
from pathlib import Path

import pytest
import torch
from conftest import repeat_rows, write_jsonl
from safetensors.torch import load_file

from a3duck.config import TrainConfig
from a3duck.errors import ConfigError, DataError
from a3duck.train import train

ROOT = Path(__file__).resolve().parents[1]


def stream_config(tiny_llama_dir, data, out, **kw):
    base = {"base_model": str(tiny_llama_dir), "data": str(data), "output_dir": str(out),
            "streaming": True, "max_steps": 4, "learning_rate": 5e-2, "warmup_steps": 0,
            "batch_size": 2, "micro_batch_size": 2, "cutoff_len": 128, "save_steps": 2,
            "precision": "fp32", "device": "cpu", "lr_scheduler": "constant",
            "add_eos_token": True, "packing": True}
    return TrainConfig(**(base | kw))


def test_streaming_needs_max_steps_and_weights():
    with pytest.raises(ConfigError, match="streaming: needs max_steps"):
        TrainConfig(streaming=True)
    with pytest.raises(ConfigError, match="streaming: a streamed mixture needs a weight"):
        TrainConfig(streaming=True, max_steps=5, data=["a.jsonl", "b.jsonl"])


def test_stream_row_errors_stop_or_are_counted(tiny_llama_dir, tmp_path):
    rows = repeat_rows(12)
    rows[5] = {"instruction": "", "output": "x"}
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match="row 6: instruction is missing or empty"):
        train(stream_config(tiny_llama_dir, data, tmp_path / "a"))
    adapter = train(stream_config(tiny_llama_dir, data, tmp_path / "b", skip_bad_rows=True,
                                  max_steps=1))
    report = json.loads((adapter / "data_report.json").read_text())
    assert report["invalid_rows"] == 1 and report["kept"] >= 4 and report["total_rows"] >= 5


def test_resume_continues_the_stream(tiny_llama_dir, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", repeat_rows(400))  # far more than 4 steps read
    full = train(stream_config(tiny_llama_dir, data, tmp_path / "full", max_steps=2))
    train(stream_config(tiny_llama_dir, data, tmp_path / "part", max_steps=1, save_steps=1))
    resumed = train(stream_config(tiny_llama_dir, data, tmp_path / "part", max_steps=2),
                    resume=True)
    a, b = (load_file(p / "adapter_model.safetensors") for p in (full, resumed))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = json.loads((resumed / "train_metrics.json").read_text())["steps"]
    assert steps == 2


def python_peak(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_stream_memory_stays_flat_at_ten_times_the_rows(sp_tokenizer_dir, tmp_path):
    """Python-heap peak while reading + validating + tokenising every row: flat for the stream,
    growing with the rows in memory. (Process RSS: bench/stream_memory.py, docs/recipes.md.)"""
    from a3duck import dataset
    from a3duck.models import load_tokenizer

    tok = load_tokenizer(str(sp_tokenizer_dir))
    peaks = {}
    for n in (20, 100, 1000):  # 20: a warm-up (first-use imports and caches)
        data = write_jsonl(tmp_path / f"{n}.jsonl", repeat_rows(n))
        config = TrainConfig(data=str(data), streaming=True, max_steps=1)
        stream, report, _ = dataset.prepare_stream(config, tok)
        peaks["stream", n] = python_peak(lambda s=stream: sum(len(r["input_ids"]) for r in s))
        assert report.kept == n
        peaks["memory", n] = python_peak(lambda c=config: dataset.prepare_dataset(c, tok))
    assert peaks["stream", 1000] < 1.5 * peaks["stream", 100], peaks
    assert peaks["memory", 1000] > 5 * peaks["memory", 100], peaks
