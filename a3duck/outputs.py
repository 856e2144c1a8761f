"""Where a run writes, settled before any model loads: the location checked
(:func:`check_output`), and one run per output at a time (:func:`output_lock`).

Two `a3duck train` runs into one folder both "succeeded" and left checkpoints whose recorded
config belonged to the other run. Now train, mix, merge, export and eval hold
:func:`output_lock` on their output for the whole run; a second run is refused at once with
the holder's pid. The lock is an ``flock`` on ``.NAME.a3duck-lock`` beside the output (beside,
not inside: outputs are built in a temporary folder and renamed into place). The kernel drops
an ``flock`` when its process dies, so a run killed with ``kill -9`` never leaves the folder
stuck; the lock file itself is removed by the run that held it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from a3duck.errors import ConfigError

SUFFIX = ".a3duck-lock"
_held: set[Path] = set()  # lock files this process holds (a nested lock is the same run's)


class OutputInUse(ConfigError):
    """Another a3duck run writes the same output (exit 2, nothing touched)."""


def lock_path(target: Path) -> Path:
    target = Path(target).absolute()
    return target.parent / f".{target.name}{SUFFIX}"


@contextlib.contextmanager
def output_lock(target: str | os.PathLike[str], what: str = "--output-dir") -> Iterator[None]:
    """Hold the lock on ``target`` (a folder or file that may not exist yet) until the block
    ends. :class:`OutputInUse` naming the other run's pid if it is held. Only the main process
    of a distributed run (``RANK`` unset or 0) takes it: its other ranks share the output."""
    path = lock_path(Path(target))
    if os.environ.get("RANK", "0") != "0" or path in _held:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path, Path(target), what)
    _held.add(path)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        _held.discard(path)
        with contextlib.suppress(OSError):
            path.unlink()  # while still held: a waiting run re-checks the inode (see _acquire)
        os.close(fd)


def _acquire(path: Path, target: Path, what: str) -> int:
    """An fd holding the flock on ``path``; retried when the file was unlinked meanwhile (the
    holder finished between our open and our lock)."""
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise OutputInUse(
                f"{target} is in use by another a3duck run (pid {holder}): wait for it to "
                f"finish, or choose another {what}") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise OutputInUse(f"{target}: could not take its lock {path.name}; try again")


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "unknown"


def check_output(target: str | os.PathLike[str], what: str, folder: bool = True,
                 flag: str | None = None) -> None:
    """ConfigError naming ``what`` if ``target`` cannot be written: a file where a folder is
    needed (or the reverse), a file on the way to it, or a location that is not writable —
    found now, not after the model has loaded and the work is done. ``flag``: the option to
    change (default ``what``)."""
    flag = flag or what
    path = Path(target).absolute()
    if path.exists() and path.is_dir() != folder:
        kind = "a file, not a folder" if folder else "a folder, not a file"
        raise ConfigError(f"{what}: {target} is {kind}; choose another {flag}")
    probe = path if path.exists() else path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{what}: {probe} is a file, so {target} cannot be created under it; "
                          f"choose another {flag}")
    if _read_only(probe):
        raise ConfigError(f"{what}: {probe} is on a read-only file system: choose a writable "
                          f"location for {flag}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}: {probe} is not writable; choose another {flag}")


def _read_only(folder: Path) -> bool:
    """A read-only mount (root passes ``os.access`` there)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False
