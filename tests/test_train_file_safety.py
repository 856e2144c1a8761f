"""a3duck/files.py, the one home of file safety: atomic writes keep the old file on failure and
leave no temporary file; folder swaps leave no hidden folder (also after a killed process) and
give every file the usual permissions; local paths never survive scrubbing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from a3duck.files import (
    atomic_write,
    atomic_write_text,
    find_local_paths,
    public_name,
    replacing_folder,
    scrub_local_paths,
    shared_mode,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def usual_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / "sub" / "f.json"
    atomic_write_text(path, "old")
    assert path.read_text() == "old" and oct(path.stat().st_mode & 0o777) == "0o644"

    def fail(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_text() == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.json"]  # no temporary file


def test_folder_swap_replaces_and_shares_permissions(tmp_path):
    target = tmp_path / "adapter"
    with replacing_folder(target) as tmp:
        (tmp / "a.txt").write_text("1")
        secret = tmp / "adapter_model.safetensors"
        secret.write_bytes(b"x")
        secret.chmod(0o600)  # what safetensors' writer leaves
        (tmp / "plots").mkdir(mode=0o700)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in [target, *target.rglob("*")]}
    assert modes == {"adapter": "0o755", "a.txt": "0o644", "adapter_model.safetensors": "0o644",
                     "plots": "0o755"}
    with pytest.raises(RuntimeError), replacing_folder(target) as tmp:
        (tmp / "b.txt").write_text("2")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "adapter_model.safetensors", "plots"]
    with replacing_folder(target) as tmp:
        (tmp / "b.txt").write_text("2")
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no .adapter.tmp-*/.old-*
    assert [p.name for p in target.iterdir()] == ["b.txt"]
    with pytest.raises(FileExistsError), replacing_folder(target, replace=False):
        pass
    assert [p.name for p in target.iterdir()] == ["b.txt"]


@pytest.mark.slow  # spawns a subprocess
def test_killed_build_leftovers_are_swept(tmp_path):
    """A process killed mid-write (SIGKILL: no cleanup runs) leaves .adapter.tmp-PID-*; the next
    build of the same target removes it, but never one of a live process."""
    code = ("import os, sys\nfrom a3duck.files import replacing_folder\n"
            "with replacing_folder(sys.argv[1]) as tmp:\n"
            "    (tmp / 'w').write_text('x'); os.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "adapter")],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert proc.returncode == -9
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == [".adapter.tmp"]
    live = tmp_path / f".adapter.tmp-{os.getpid()}-x"  # another build in progress (this process)
    live.mkdir()
    with replacing_folder(tmp_path / "adapter") as tmp:
        (tmp / "ok").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "adapter"]


@pytest.mark.parametrize("text, scrubbed", [
    ("data: /home/u/secret/train.jsonl\n", "data: train.jsonl\n"),
    ('{"name_or_path": "/srv/models/llama"}', '{"name_or_path": "llama"}'),
    ("output_dir: /anywhere/at/all/run/", "output_dir: run"),
    ("see ~/data/x.csv, then", "see x.csv, then"),
    ('"C:\\\\Users\\\\me\\\\data.json"', '"data.json"'),
    ("PYTHONPATH=x:/opt/lib/a3duck", "PYTHONPATH=x:a3duck"),
    ("file:///tmp/run/plot.png", "plot.png"),
])
def test_scrub_replaces_any_absolute_path_by_its_name(text, scrubbed):
    out, found = scrub_local_paths(text)
    assert out == scrubbed and found and find_local_paths(out) == []


@pytest.mark.parametrize("text", [
    "https://huggingface.co/DopeorNope/A3_duck", "runs/demo/adapter", "../data/x.jsonl",
    "tokens/s", "1 / 2", "plots/ia3_heatmap.png", "a3duck/publish/hub.py",
])
def test_relative_paths_and_urls_are_not_local_paths(text):
    assert scrub_local_paths(text) == (text, [])


def test_public_name(tmp_path):
    local = tmp_path / "my.jsonl"
    local.write_text("{}")
    assert public_name(str(local)) == "my.jsonl"
    assert public_name("~/x/train.parquet") == "train.parquet"
    assert public_name("garage-bAInd/Open-Platypus") == "garage-bAInd/Open-Platypus"
    assert public_name("data/demo/train.jsonl") == "train.jsonl"
    assert public_name(None) is None
    assert shared_mode() == 0o644 and shared_mode(directory=True) == 0o755
