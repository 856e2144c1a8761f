"""Bounds and locks (issue 24, class 5) and output locations (class 2): one run per output at a
time, refused at once with the holder's pid and never stuck after a kill -9; eval's --output
checked before any model loads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from adapter_factory import make_adapter

from a3duck.cli import main
from a3duck.outputs import OutputInUse, lock_path, output_lock

HOLD = ("import sys, time; from a3duck.outputs import output_lock\n"
        "with output_lock(sys.argv[1]):\n"
        "    print('held', flush=True); time.sleep(600)\n")


@pytest.fixture
def held(tmp_path):
    """Another process holding the lock on tmp_path/out (killed with SIGKILL at the end)."""
    target = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(target)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    yield target, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_a_second_run_into_a_locked_folder_is_refused_with_the_pid(held, tiny_llama_dir,
                                                                   tmp_path, capsys):
    target, proc = held
    adapter = make_adapter(tiny_llama_dir, tmp_path / "a" / "adapter", base_id="org/tiny")
    assert main(["mix", "--adapter", str(adapter), "--output-dir", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"in use by another a3duck run (pid {proc.pid})" in err and "Traceback" not in err
    assert not target.exists()
    code = main(["train", "--base-model", str(tiny_llama_dir), "--data", str(adapter),
                 "--output-dir", str(target), "--device", "cpu"])
    assert code == 2 and f"pid {proc.pid}" in capsys.readouterr().err  # before any model work
    # kill -9: the kernel drops the flock, so the folder is not stuck
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert main(["mix", "--adapter", str(adapter), "--output-dir", str(target)]) == 0
    assert (target / "adapter_model.safetensors").is_file()
    assert not lock_path(target).exists()  # the run that held it removed its lock file


def test_a_mix_that_waited_out_another_into_the_same_folder_is_refused(tiny_llama_dir, tmp_path,
                                                                        capsys, monkeypatch):
    """The other run finishes between this run's first check and its lock: refused inside the
    lock (a FileExistsError traceback after the whole mix before), the other's folder kept."""
    from a3duck import mix

    adapter = make_adapter(tiny_llama_dir, tmp_path / "a" / "adapter", base_id="org/tiny")
    target = tmp_path / "out"
    real = mix.check_output

    def other_run_finishes(out, what):
        real(out, what)
        out.mkdir()
        (out / "theirs").write_text("kept")

    monkeypatch.setattr(mix, "check_output", other_run_finishes)
    assert main(["mix", "--adapter", str(adapter), "--output-dir", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"{target} already exists: choose another --output-dir" in err
    assert "Traceback" not in err and (target / "theirs").read_text() == "kept"


def test_nested_locks_of_one_run_and_release(tmp_path):
    target = tmp_path / "out"
    with output_lock(target), output_lock(target):  # export -> merge take the same lock
        assert lock_path(target).read_text().strip() == str(os.getpid())
    with output_lock(target):  # released: taken again at once
        pass


def test_lock_is_refused_while_another_process_holds_it(held):
    target, proc = held
    started = time.monotonic()
    with pytest.raises(OutputInUse, match=f"pid {proc.pid}"), output_lock(target):
        pass
    assert time.monotonic() - started < 5  # refused, not waited for


@pytest.mark.parametrize("case", ["folder", "under-a-file", "read-only"])
def test_eval_output_location_is_checked_before_the_model_loads(case, tmp_path, capsys,
                                                                monkeypatch):
    output = {"folder": tmp_path, "under-a-file": tmp_path / "file.txt" / "r.json",
              "read-only": tmp_path / "ro" / "r.json"}[case]
    (tmp_path / "file.txt").write_text("x")
    if case == "read-only":
        (tmp_path / "ro").mkdir()
        monkeypatch.setattr(os, "access", lambda *a, **k: False)  # as a non-root user sees it
    # a base that does not exist: reaching the model load would give another message
    code = main(["eval", "--base-model", str(tmp_path / "no-model"), "--tasks", "arc_challenge",
                 "--data-dir", str(tmp_path), "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 2 and "--output:" in err and "Traceback" not in err, err
    assert {"folder": "is a folder, not a file", "under-a-file": "is a file, so",
            "read-only": "is not writable"}[case] in err
