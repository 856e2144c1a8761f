"""Distributed training on this CPU machine: 2 processes (torchrun, gloo) equal 1 process with
the same global batch; a killed rank fails the run cleanly; --resume recovers. Launcher configs
for GPUs parse; quantised bases give a clear message on a CPU."""

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import repeat_rows, write_jsonl
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
ROWS = repeat_rows(32)


@pytest.fixture()
def data_file(tmp_path):
    return write_jsonl(tmp_path / "train.jsonl", ROWS)


def train_cmd(nproc, tiny, data, out, port, *extra):
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                 "--master_port", str(port)] if nproc > 1 else [sys.executable])
    return [*launcher, "-m", "a3duck", "train", "--base-model", str(tiny), "--data", str(data),
            "--output-dir", str(out), "--batch-size", "4", "--micro-batch-size", "1",
            "--learning-rate", "0.05", "--save-steps", "3", "--device", "cpu",
            "--cutoff-len", "256", *extra]  # within the tiny model's window (512)


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, **kw)


def adapter_tensors(out):
    return load_file(Path(out) / "adapter" / "adapter_model.safetensors")


@pytest.mark.slow  # spawns a subprocess
def test_two_processes_equal_one_with_the_same_global_batch(tiny_llama_dir, data_file, tmp_path):
    one = run(train_cmd(1, tiny_llama_dir, data_file, tmp_path / "one", 0, "--max-steps", "6"))
    two = run(train_cmd(2, tiny_llama_dir, data_file, tmp_path / "two", 29611, "--max-steps", "6"))
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stderr.count("adapter written to") == 1  # artifacts are written once
    a, b = adapter_tensors(tmp_path / "one"), adapter_tensors(tmp_path / "two")
    assert max(float((a[k] - 1).abs().max()) for k in a) > 1e-3  # training moved the vectors
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    m1, m2 = (json.loads((tmp_path / r / "adapter" / "train_metrics.json").read_text())
              for r in ("one", "two"))
    assert m1["steps"] == m2["steps"] == 6 and m1["train_tokens"] == m2["train_tokens"]


@pytest.mark.slow  # spawns a subprocess
def test_killed_rank_fails_cleanly_and_resume_recovers(tiny_llama_dir, data_file, tmp_path):
    out = tmp_path / "run"
    cmd = train_cmd(2, tiny_llama_dir, data_file, out, 29612, "--max-steps", "400")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 300
    ck = out / "checkpoints"
    while time.time() < deadline and not (ck / "checkpoint-3" / "trainer_state.json").exists():
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    ranks = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                            text=True).stdout.split()]  # torchrun's workers
    assert ranks, "no worker processes found"
    os.kill(max(ranks), signal.SIGKILL)  # one rank dies
    assert proc.wait(timeout=300) != 0
    assert not (out / "adapter").exists()
    resumed = run(train_cmd(1, tiny_llama_dir, data_file, out, 0, "--max-steps", "9", "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr
    assert json.loads((out / "adapter" / "train_metrics.json").read_text())["steps"] == 9


def test_accelerate_configs_parse():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {Path(f).name: load_config_from_file(f).distributed_type.value
             for f in glob.glob(str(ROOT / "recipes" / "accelerate" / "*.yaml"))}
    assert kinds == {"ddp-8gpu.yaml": "MULTI_GPU", "fsdp-8gpu.yaml": "FSDP",
                     "deepspeed-zero3-8gpu.yaml": "DEEPSPEED", "multinode-2x8gpu.yaml": "FSDP"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
@pytest.mark.slow  # spawns a subprocess
def test_quantised_base_on_cpu_is_a_clear_error(tiny_llama_dir, data_file, tmp_path):
    res = run(train_cmd(1, tiny_llama_dir, data_file, tmp_path / "q", 0, "--load-in-4bit"))
    assert res.returncode == 2
    assert "--load-in-4bit needs a CUDA GPU" in res.stderr
    assert not (tmp_path / "q").exists()
