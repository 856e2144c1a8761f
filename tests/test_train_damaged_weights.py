"""Damaged adapter weights: every reader (compare, inspect, card, push, the Space, eval) goes
through adapter_folder.read_weights: "adapter file X is corrupt or truncated (...)"; resume from
a torn checkpoint falls back to the newest loadable one; the final adapter is written with the
usual permissions and no hidden temporary folder."""

from __future__ import annotations

import json
import logging
import os
import shutil

import pytest
import torch
from adapter_factory import make_adapter
from conftest import repeat_rows, write_jsonl
from safetensors.torch import load_file

from a3duck import adapter_folder, models
from a3duck.cli import main
from a3duck.config import TrainConfig
from a3duck.errors import ModelError

CORRUPT = "is corrupt or truncated"


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "truncated": _truncate,
    "garbage": lambda p: p.write_bytes(os.urandom(300)),
    "empty": lambda p: p.write_bytes(b""),
    "header only": lambda p: p.write_bytes(p.read_bytes()[: 8 + int.from_bytes(
        p.read_bytes()[:8], "little")]),
}


@pytest.fixture(scope="module")
def good_adapter(tiny_llama_dir, tmp_path_factory):
    return make_adapter(tiny_llama_dir, tmp_path_factory.mktemp("w") / "adapter")


@pytest.fixture(params=sorted(DAMAGE))
def damaged(request, good_adapter, tmp_path):
    adapter = shutil.copytree(good_adapter, tmp_path / "adapter")
    DAMAGE[request.param](adapter / adapter_folder.ADAPTER_WEIGHTS)
    return adapter


def test_loading_a_damaged_adapter_names_the_file(damaged):
    weights = damaged / adapter_folder.ADAPTER_WEIGHTS
    with pytest.raises(ModelError, match=f"adapter file {weights} {CORRUPT}"):
        models.load(adapter=str(damaged))


@pytest.mark.parametrize("argv", [["inspect", "{a}"], ["card", "--adapter", "{a}"],
                                  ["compare", "--adapter", "{a}", "--data", "{d}"],
                                  ["push", "--adapter-dir", "{a}", "--dry-run"]])
def test_commands_report_damaged_weights_without_traceback(damaged, tmp_path, capsys, argv):
    data = write_jsonl(tmp_path / "eval.jsonl", repeat_rows(1))
    code = main([a.format(a=damaged, d=data) for a in argv])
    err = capsys.readouterr().err
    assert code != 0 and CORRUPT in err and "Traceback" not in err, err


def test_space_reports_damaged_weights(tiny_llama_dir, good_adapter, tmp_path):
    from a3duck.space.runtime import Runtime, ServeConfig

    adapter = shutil.copytree(good_adapter, tmp_path / "adapter")
    _truncate(adapter / adapter_folder.ADAPTER_WEIGHTS)
    config = ServeConfig(base_model=str(tiny_llama_dir), adapter=str(adapter), device="cpu",
                         dtype="fp32")
    with pytest.raises(ModelError, match=CORRUPT):
        Runtime.load(config)


def test_resume_from_a_torn_checkpoint_uses_the_previous_one(tiny_llama_dir, tmp_path, caplog):
    from a3duck.checkpoints import last_complete as _last_complete_checkpoint
    from a3duck.train import train

    data = write_jsonl(tmp_path / "train.jsonl", repeat_rows(16))
    config = TrainConfig(base_model=str(tiny_llama_dir), data=str(data),
                         output_dir=str(tmp_path / "run"), learning_rate=5e-2, warmup_steps=0,
                         batch_size=2, micro_batch_size=2, max_steps=4, save_steps=2,
                         cutoff_len=128, precision="fp32", device="cpu", lr_scheduler="constant")
    old = os.umask(0o022)
    try:
        adapter = train(config)
    finally:
        os.umask(old)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in adapter.iterdir()}
    assert set(modes.values()) == {"0o644"}, modes  # safetensors writes 0600 by itself
    assert not [p for p in adapter.parent.iterdir() if p.name.startswith(".")]
    uninterrupted = load_file(adapter / adapter_folder.ADAPTER_WEIGHTS)
    checkpoints = tmp_path / "run" / "checkpoints"
    _truncate(checkpoints / "checkpoint-4" / adapter_folder.ADAPTER_WEIGHTS)  # torn while written
    assert _last_complete_checkpoint(checkpoints) == str(checkpoints / "checkpoint-2")
    assert "skipping checkpoint-4: damaged" in caplog.text
    with caplog.at_level(logging.INFO, logger="a3duck.checkpoints"):
        train(config, resume=True)  # steps 3-4 again, from checkpoint-2
    assert f"resuming from {checkpoints / 'checkpoint-2'}" in caplog.text
    resumed = load_file(adapter / adapter_folder.ADAPTER_WEIGHTS)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.allclose(resumed[k], uninterrupted[k], atol=1e-5) for k in resumed)
    assert json.loads((adapter / "train_metrics.json").read_text())["steps"] == 4


def test_checkpoint_problems_are_named(tmp_path):
    from a3duck.checkpoints import CHECKPOINT_FILES
    from a3duck.checkpoints import problem as _checkpoint_problem

    folder = tmp_path / "checkpoint-2"
    folder.mkdir()
    assert "incomplete" in _checkpoint_problem(folder)
    torch.save({"x": torch.ones(3)}, folder / "optimizer.pt")
    torch.save({"x": torch.ones(3)}, folder / "scheduler.pt")
    (folder / "trainer_state.json").write_text("{}")
    from safetensors.torch import save_file

    save_file({"w": torch.ones(3)}, folder / adapter_folder.ADAPTER_WEIGHTS)
    assert set(CHECKPOINT_FILES) == {p.name for p in folder.iterdir()}
    assert _checkpoint_problem(folder) is None
    _truncate(folder / "optimizer.pt")
    assert "damaged (BadZipFile" in _checkpoint_problem(folder)
    torch.save({"x": torch.ones(3)}, folder / "optimizer.pt")
    (folder / "trainer_state.json").write_text('{"global_step": ')
    assert "damaged (JSONDecodeError" in _checkpoint_problem(folder)
