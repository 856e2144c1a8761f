"""OS errors (issue 24, class 3): disk full / read-only / not-a-directory end as one message
naming the path, exit 2, no traceback (a3duck.oserrors via a3duck.entry.run_command)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from adapter_factory import make_adapter

from a3duck.cli import main


@pytest.fixture
def small_mount(tmp_path):
    """A 64 KiB tmpfs (CI runs as root, like this machine: mount is allowed there)."""
    point = tmp_path / "mnt"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(point)],
                          capture_output=True, check=False)
    if done.returncode:
        pytest.skip(f"mount not permitted here: {done.stderr.decode().strip()}")
    yield point
    # lazy: detached even while a file in it is still open (a checkpoint writer's), so no
    # mount is left behind under pytest's temp folders
    subprocess.run(["umount", "--lazy", str(point)], check=False)


def test_disk_full_during_mix_is_one_message(tiny_llama_dir, tmp_path, small_mount, capsys):
    adapter = make_adapter(tiny_llama_dir, tmp_path / "a", base_id="org/tiny")
    (small_mount / "filler").write_bytes(b"x" * 60_000)  # leave too little for the adapter
    out = small_mount / "mixed"
    assert main(["mix", "--adapter", str(adapter), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no space left on the device" in err and "Traceback" not in err
    assert not out.exists()
    assert [p.name for p in small_mount.iterdir()] == ["filler"]  # nothing torn left


def test_read_only_location_is_one_message(tiny_llama_dir, tmp_path, small_mount, capsys):
    adapter = make_adapter(tiny_llama_dir, tmp_path / "a", base_id="org/tiny")
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    assert main(["mix", "--adapter", str(adapter), "--output-dir",
                 str(small_mount / "mixed")]) == 2
    err = capsys.readouterr().err
    assert "is on a read-only file system: choose a writable location" in err
    assert str(Path(small_mount)) in err and "Traceback" not in err


def test_disk_full_while_checkpointing_leaves_no_torn_checkpoint(tiny_llama_dir, tmp_path,
                                                                 small_mount, capsys, caplog):
    """The trainer's first checkpoint does not fit: one message, exit 2, and the half-written
    checkpoint is removed (a later --resume never meets it); the data and config files stay."""
    from conftest import repeat_rows, write_jsonl

    data = write_jsonl(tmp_path / "train.jsonl", repeat_rows(8))
    out = small_mount / "run"
    argv = ["train", "--base-model", str(tiny_llama_dir), "--data", str(data),
            "--output-dir", str(out), "--max-steps", "2", "--save-steps", "1",
            "--batch-size", "2", "--micro-batch-size", "2", "--cutoff-len", "128",
            "--precision", "fp32", "--device", "cpu", "--warmup-steps", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no space left on the device" in err and "Traceback" not in err
    assert "removed the torn checkpoint checkpoint-1 (incomplete" in caplog.text
    checkpoints = out / "checkpoints"
    assert not list(checkpoints.glob("checkpoint-*"))
    assert (checkpoints / "a3duck_config.yaml").is_file()  # what a --resume would check
    assert not (out / "adapter").exists()
