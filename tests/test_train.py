"""Training on the tiny SentencePiece Llama: labels, packing equivalence, artifacts, merge, resume."""

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
from train_support import build_trainer, per_token_losses, tiny_config

from a3duck import models
from a3duck.data import DataError
from a3duck.train import train

ROOT = Path(__file__).resolve().parents[1]
ROWS = repeat_rows(24)


@pytest.fixture()
def data_file(tmp_path):
    return write_jsonl(tmp_path / "train.jsonl", ROWS)


def test_labels_mask_prompt_and_keep_answer_and_eos(tiny_llama_dir, data_file, tmp_path):
    trainer, tok = build_trainer(tiny_config(tiny_llama_dir, data_file, tmp_path))
    row = trainer.train_dataset[0]
    batch = trainer.data_collator([row])
    labels, ids = batch["labels"][0].tolist(), batch["input_ids"][0].tolist()
    from a3duck.prompts import ALPACA

    prompt_len = len(tok(ALPACA.render(ROWS[0]["instruction"]))["input_ids"])
    assert all(x == -100 for x in labels[:prompt_len])
    assert labels[prompt_len:] == ids[prompt_len:] and labels[-1] == tok.eos_token_id
    answer = tok.decode(ids[prompt_len:-1])
    assert answer.strip() == ROWS[0]["output"]


def test_packed_padding_free_batch_equals_examples_one_by_one(tiny_llama_dir, data_file, tmp_path):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    trainer, tok = build_trainer(tiny_config(tiny_llama_dir, data_file, tmp_path))
    rows = [trainer.train_dataset[i] for i in range(3)]
    model = trainer.model.eval()
    packed = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)(rows)
    assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
    single = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        got = per_token_losses(model, packed["input_ids"], packed["labels"], packed["position_ids"])
        ref = torch.cat([per_token_losses(model, b["input_ids"], b["labels"])
                         for b in (single([r]) for r in rows)])
    assert got.shape == ref.shape and torch.allclose(got, ref, atol=1e-5)


def test_training_lowers_loss_and_writes_loadable_artifacts(tiny_llama_dir, tmp_path):
    # A repeated batch: the same 4 rows every step, so the loss must fall.
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:4]))
    adapter = train(tiny_config(tiny_llama_dir, few, tmp_path / "run", packing=True,
                                learning_rate=0.3))
    names = {p.name for p in adapter.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "a3duck_config.yaml",
            "train_metrics.json", "tokenizer.json", "data_report.json"} <= names
    metrics = json.loads((adapter / "train_metrics.json").read_text())
    losses = [h["loss"] for h in metrics["loss_history"]]
    assert metrics["steps"] == 8 and losses == sorted(losses, reverse=True)
    assert losses[-1] < losses[0] - 0.2  # measured: 5.93 -> 5.56 in 8 steps
    assert metrics["train_tokens"] > 0 and metrics["train_tokens_per_second"] > 0
    assert metrics["peak_memory_bytes"] > 0 and metrics["final_loss"] == losses[-1]
    from peft import AutoPeftModelForCausalLM

    auto = AutoPeftModelForCausalLM.from_pretrained(str(adapter)).eval()
    mine, _ = models.load(adapter=str(adapter), dtype=torch.float32)
    merged_dir = models.merge_adapter(str(adapter), tmp_path / "merged")
    merged, _ = models.load(str(merged_dir), dtype=torch.float32)
    ids = torch.tensor([[1, 20, 30, 40, 50, 60, 70]])
    with torch.no_grad():
        a, b, m = auto(ids).logits, mine(ids).logits, merged(ids).logits
        base = mine.get_base_model()
        with mine.disable_adapter():
            plain = mine(ids).logits
    assert torch.allclose(a, b) and torch.allclose(m, b, atol=1e-4)
    assert not torch.allclose(plain, b, atol=1e-3)  # training changed something
    assert base is not None and not (tmp_path / "run" / ".adapter.tmp").exists()


def test_bad_data_writes_nothing(tiny_llama_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "q", "output": ""}\n')
    with pytest.raises(DataError, match="row 1: output/response is missing or empty"):
        train(tiny_config(tiny_llama_dir, bad, tmp_path / "run"))
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def run_cli(args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "a3duck", "train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def cli_args(tiny_llama_dir, data_file, out):
    return ["--base-model", str(tiny_llama_dir), "--data", str(data_file), "--output-dir",
            str(out), "--max-steps", "20", "--save-steps", "4", "--batch-size", "4",
            "--micro-batch-size", "1", "--learning-rate", "0.05", "--device", "cpu",
            "--cutoff-len", "256"]  # within the tiny model's window (512)


@pytest.mark.slow  # spawns a subprocess
def test_resume_after_sigkill_equals_uninterrupted_run(tiny_llama_dir, data_file, tmp_path):
    full = run_cli(cli_args(tiny_llama_dir, data_file, tmp_path / "full"))
    part = run_cli(cli_args(tiny_llama_dir, data_file, tmp_path / "part"))
    ck = tmp_path / "part" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not (ck / "checkpoint-8" / "trainer_state.json").exists():
        assert part.poll() is None, part.stderr.read().decode()[-2000:]
        time.sleep(0.02)
    part.send_signal(signal.SIGKILL)
    part.wait()
    assert not (tmp_path / "part" / "adapter").exists(), "killed run must not leave an adapter"
    again = run_cli(cli_args(tiny_llama_dir, data_file, tmp_path / "part"))  # no --resume
    assert again.wait() == 2 and b"pass --resume" in again.stderr.read()
    resumed = run_cli([*cli_args(tiny_llama_dir, data_file, tmp_path / "part"), "--resume"])
    assert resumed.wait() == 0, resumed.stderr.read().decode()[-2000:]
    assert full.wait() == 0
    a = load_file(tmp_path / "full" / "adapter" / "adapter_model.safetensors")
    b = load_file(tmp_path / "part" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    steps = [json.loads((tmp_path / r / "adapter" / "train_metrics.json").read_text())["steps"]
             for r in ("full", "part")]
    assert steps == [20, 20]
