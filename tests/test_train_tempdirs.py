"""Temporary folders (issue 24, class 5): named a3duck-PID-KIND-…, removed when a run is stopped
with SIGTERM, and swept by the next run when a run killed with kill -9 left them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from a3duck.scratch import process_folder, sweep, temp_folder

ROOT = Path(__file__).resolve().parents[1]
# a command module run through the one entry path every a3duck command takes (a3duck.entry)
LONG_RUN = """
import sys, time, types
from a3duck.entry import invoke
from a3duck.scratch import temp_folder

def run(args):
    with temp_folder("eval") as work:
        (work / "part").write_text("x")
        print(work, flush=True)
        time.sleep(600)

module = types.SimpleNamespace(add_arguments=lambda parser: None, run=run)
sys.exit(invoke(module, [], prog="a3duck long", description="a long run"))
"""


def _start(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", LONG_RUN], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    folder = Path(proc.stdout.readline().strip())
    assert folder.is_dir() and folder.name.startswith(f"a3duck-{proc.pid}-eval-")
    return proc, folder, env


def test_sigterm_removes_the_runs_temporary_folders(tmp_path):
    proc, folder, _ = _start(tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 143
    assert not folder.exists()
    assert "stopped (SIGTERM)" in proc.stderr.read()


def test_the_next_run_sweeps_what_kill_9_left(tmp_path):
    proc, folder, env = _start(tmp_path)
    proc.kill()
    proc.wait(30)
    assert folder.is_dir()  # kill -9 runs no cleanup
    done = subprocess.run([sys.executable, "-m", "a3duck", "inspect", str(tmp_path / "none")],
                          env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2  # any command: the sweep runs before its work
    assert not folder.exists()


def test_sweep_keeps_live_runs_and_other_folders(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = tmp_path / f"a3duck-{dead.pid}-eval-abc"
    mine = tmp_path / f"a3duck-{os.getpid()}-eval-abc"
    other = tmp_path / "a3duck-notes"
    for path in (gone, mine, other):
        path.mkdir()
    assert sweep(tmp_path) == [gone]
    assert mine.is_dir() and other.is_dir()
    with temp_folder("push") as work:
        assert work.name.startswith(f"a3duck-{os.getpid()}-push-")
    assert not work.exists()
    assert process_folder("plots").name.startswith(f"a3duck-{os.getpid()}-plots-")
