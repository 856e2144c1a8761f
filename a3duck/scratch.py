"""The temporary folders a3duck makes: named ``a3duck-PID-KIND-…`` in the system's temporary
folder, removed when the run ends — also when it is stopped with SIGTERM (how servers and job
schedulers stop processes) — and swept by the next run when a run killed with ``kill -9`` left
them (their PID is no longer alive).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

_NAME = re.compile(r"^a3duck-(\d+)-[a-z]+-")


def _prefix(kind: str) -> str:
    return f"a3duck-{os.getpid()}-{kind}-"


@contextlib.contextmanager
def temp_folder(kind: str) -> Iterator[Path]:
    """A fresh temporary folder for the block (``kind``: a short lowercase word)."""
    with tempfile.TemporaryDirectory(prefix=_prefix(kind)) as path:
        yield Path(path)


def process_folder(kind: str) -> Path:
    """A temporary folder that lives until the process exits."""
    path = Path(tempfile.mkdtemp(prefix=_prefix(kind)))
    atexit.register(shutil.rmtree, path, True)
    return path


def sweep(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove a3duck temporary folders whose process is gone; returns what was removed."""
    from a3duck.files import pid_alive

    removed = []
    for path in Path(root or tempfile.gettempdir()).glob("a3duck-*-*-*"):
        match = _NAME.match(path.name)
        if match and path.is_dir() and not path.is_symlink() \
                and not pid_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def stop_cleanly_on_sigterm() -> None:
    """SIGTERM ends the run like Ctrl-C's exit path (``SystemExit(143)``): context managers
    and atexit handlers run, so temporary folders are removed. Only where SIGTERM still has
    its default action and only from the main thread (a host application keeps its own)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum, frame) -> None:
    print("stopped (SIGTERM): cleaning up", file=sys.stderr)
    raise SystemExit(128 + signum)
