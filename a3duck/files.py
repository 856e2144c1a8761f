"""File safety, one home each: an atomic file write, an atomic folder swap, public names.

- :func:`atomic_write_text` / :func:`atomic_write`: the file appears complete or not at all
  (temporary file in the same folder, then ``os.replace``), with the permissions of any other
  file the user creates (``0666 & ~umask``, usually 0644).
- :func:`replacing_folder`: build a folder beside its target, then rename it into place; an
  interrupted build leaves no hidden folder behind (removed on errors; a killed process's
  leftovers are swept by the next build of the same target), and every file in the folder gets
  the usual permissions (libraries such as safetensors create theirs 0600).
- :func:`public_name`, :func:`find_local_paths`, :func:`scrub_local_paths`: what may be shown or
  published about a location: Hub ids as they are, local paths reduced to their file names.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

_UMASK_LOCK = threading.Lock()
# An absolute path: POSIX (two components or more, not inside a URL or a relative path), a
# home-relative ~/..., a Windows drive path (C:\x, JSON-escaped C:\\x) or a file:// URI.
_STOP = r"\s\"'`,;()<>\[\]{}|*"
LOCAL_PATH_RE = re.compile(
    rf"file://[^{_STOP}]+"
    rf"|(?<![\w/.~\\-])/[^{_STOP}/]+(?:/[^{_STOP}/]*)+"
    rf"|(?<![\w/])~/[^{_STOP}]+"
    rf"|(?<![\w])[A-Za-z]:\\[^{_STOP}]+")
HUB_ID_RE = re.compile(r"[\w.-]+/[\w.-]+")
_FILE_SUFFIX_RE = re.compile(r"\.(jsonl?|parquet|csv|txt|ya?ml|safetensors|bin|gguf)$")


# ----------------------------------------------------------------------------- file writes

def shared_mode(directory: bool = False) -> int:
    """The mode a new file (or folder) gets under the current umask (0644/0755 usually)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it to ``path``.

    A crash or an error leaves the previous ``path`` (or none) and no temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, shared_mode())  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# ----------------------------------------------------------------------------- folder swaps

@contextlib.contextmanager
def replacing_folder(target: str | os.PathLike[str], *, replace: bool = True) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; on success rename it to ``target``.

    An existing ``target`` is moved aside and removed after the swap (``replace=True``), or
    left as it is and ``FileExistsError`` raised (``replace=False``). The temporary folder is
    removed whatever happens; one left by a killed process is removed by the next build."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_leftovers(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-{os.getpid()}-"))
    try:
        yield tmp
        _share(tmp)
        if target.exists() and not replace:
            raise FileExistsError(f"{target} already exists")
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.time_ns()}")
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _share(folder: Path) -> None:
    """Give every file and folder under ``folder`` the usual permissions (0644/0755)."""
    file_mode, dir_mode = shared_mode(), shared_mode(directory=True)
    folder.chmod(dir_mode)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            path.chmod(dir_mode if path.is_dir() else file_mode)


def _sweep_leftovers(target: Path) -> None:
    """Remove ``.target.tmp-PID-*`` / ``.target.old-PID-*`` folders of processes that are gone."""
    for path in target.parent.glob(f".{target.name}.*-*-*"):
        parts = path.name[len(target.name) + 2:].split("-")
        if parts[0] in ("tmp", "old") and parts[1].isdigit() and not pid_alive(int(parts[1])):
            shutil.rmtree(path, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (ours to signal or not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes (read in 1 MiB blocks): how a3duck names content."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- public names

def is_hub_id(name: str | None) -> bool:
    """'owner/name' with no file extension and no path syntax."""
    text = name or ""
    return bool(HUB_ID_RE.fullmatch(text)) and not _FILE_SUFFIX_RE.search(text) and not (
        text.startswith("."))


def public_name(value: str | os.PathLike[str] | None) -> str | None:
    """What may be shown or published about ``value``: a Hub id (or a plain name) as it is, a
    local path (absolute, relative, ``~``, or an existing file or folder) by its last part."""
    if value is None:
        return None
    text = os.fspath(value)
    if not text:
        return text
    exists = Path(text).expanduser().exists()
    if is_hub_id(text) and not exists:
        return text
    if exists or any(sep in text for sep in ("/", "\\")) or text.startswith("~"):
        return _last_part(text)
    return text


def _last_part(path: str) -> str:
    name = PureWindowsPath(path).name if "\\" in path else PurePosixPath(path).name
    return name or path.strip("/\\") or "."


def find_local_paths(text: str) -> list[str]:
    """Every absolute local path in ``text``, sorted and without repeats."""
    return sorted({m.group(0) for m in LOCAL_PATH_RE.finditer(text)})


def scrub_local_paths(text: str) -> tuple[str, list[str]]:
    """(``text`` with every local path replaced by its file name, the paths replaced)."""
    found = find_local_paths(text)
    for path in sorted(found, key=len, reverse=True):  # longest first: a home inside a path
        text = text.replace(path, _last_part(path.rstrip("/\\").removeprefix("file://")))
    return text, found
