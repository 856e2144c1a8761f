"""OS errors are user errors: disk full, read-only, not-a-directory, is-a-directory, permission.

:func:`explain` turns such an ``OSError`` into one message naming the path and what to do; the
entry point (:func:`a3duck.entry.run_command`) prints it and exits 2 instead of a traceback.
"""

from __future__ import annotations

import errno
import os
import re

ADVICE = {
    errno.ENOSPC: "no space left on the device: free some space or choose another location",
    errno.EDQUOT: "the disk quota is exceeded: free some space or choose another location",
    errno.EROFS: "the file system is read-only: choose a writable location",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another location",
    errno.EISDIR: "it is a folder where a file is needed: give a file name",
    errno.EACCES: "permission denied: choose a location you may write to, or fix its permissions",
    errno.EPERM: "operation not permitted: choose a location you may write to",
}
KNOWN = frozenset(ADVICE)


_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")  # safetensors' Rust I/O errors


def as_os_error(exc: BaseException) -> OSError | None:
    """``exc`` as an OSError the user can fix (see ADVICE), or None. Libraries written in Rust
    (safetensors, tokenizers) raise their own types carrying ``(os error N)``."""
    if isinstance(exc, OSError):
        return exc if exc.errno in KNOWN else None
    found = _RUST_OS_ERROR.search(str(exc))
    if found and int(found.group(1)) in KNOWN:
        number = int(found.group(1))
        return OSError(number, os.strerror(number))
    return None


def explain(exc: OSError) -> str:
    """``exc`` as one message: the path, what went wrong, what to do."""
    path = exc.filename if exc.filename is not None else "a file"
    return f"cannot write {path}: {ADVICE.get(exc.errno, exc.strerror or str(exc))}"
