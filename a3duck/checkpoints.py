"""Trainer checkpoints (OUTPUT_DIR/checkpoints/checkpoint-N): which are complete, which to
resume from, and removing a torn one after a failed write (a full disk while saving)."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import zipfile
from pathlib import Path

from a3duck import adapter_folder as af
from a3duck.config import ConfigError
from a3duck.errors import A3DuckError

log = logging.getLogger(__name__)


def check_fresh(checkpoints: Path, resume: bool) -> Path:
    """Refuse to silently restart over an earlier run's checkpoints (alpaca-lora's failure)."""
    if has_any(checkpoints) and not resume:
        raise ConfigError(
            f"{checkpoints} holds checkpoints of an earlier run: pass --resume to continue it, "
            "or choose another --output-dir (or delete that folder) to start over"
        )
    if resume and not has_any(checkpoints):
        log.info("--resume: no checkpoint in %s yet, starting from step 0", checkpoints)
    return checkpoints


def has_any(folder: Path) -> bool:
    return folder.is_dir() and any(p.name.startswith("checkpoint-") for p in folder.iterdir())


# A checkpoint interrupted while being written lacks some of these; resume skips it.
CHECKPOINT_FILES = (af.ADAPTER_WEIGHTS, "optimizer.pt", "scheduler.pt",
                    "trainer_state.json")


def last_complete(folder: Path) -> str | None:
    """The newest checkpoint folder that is complete and loadable, or None; damaged or
    interrupted ones are named and skipped (resume falls back to the previous one)."""
    if not folder.is_dir():
        return None
    found = sorted((p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for path in found:
        why = problem(path)
        if why is None:
            log.info("resuming from %s", path)
            return str(path)
        log.warning("skipping %s: %s", path.name, why)
    return None


# torch.save reports a failed write from its C++ writer as a RuntimeError without an errno.
TORCH_WRITE_FAILED = ("iostream error", "PytorchStreamWriter failed")
LOW_SPACE_BYTES = 1 << 20  # under 1 MiB free after such a failure: the disk was full


@contextlib.contextmanager
def no_torn_checkpoint(folder: Path):
    """Around training: when it fails (a full disk while a checkpoint is saved, or anything
    else), the checkpoints left are complete or absent; torch's write failure on a full disk
    is raised as the OSError (ENOSPC) it is, so the user reads one message."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        remove_torn(folder)
        full = as_disk_full(exc, folder)
        if full is None:
            raise
        raise full from exc


def as_disk_full(exc: BaseException, folder: Path) -> OSError | None:
    """ENOSPC for ``folder`` when ``exc`` is torch's write failure and the disk is (nearly)
    full; None otherwise (the error is raised unchanged)."""
    if not isinstance(exc, RuntimeError) or not any(s in str(exc) for s in TORCH_WRITE_FAILED):
        return None
    if shutil.disk_usage(folder).free >= LOW_SPACE_BYTES:
        return None
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))


def remove_torn(folder: Path) -> None:
    """Delete every checkpoint in ``folder`` that :func:`problem` finds fault with (after a
    write failed: what stays is complete or absent)."""
    for path in folder.glob("checkpoint-*"):
        why = problem(path)
        if why:
            shutil.rmtree(path, ignore_errors=True)
            log.warning("removed the torn checkpoint %s (%s)", path.name, why)


def problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be resumed from (missing or damaged files), or None."""
    missing = [f for f in CHECKPOINT_FILES if not (folder / f).is_file()]
    if missing:
        return f"incomplete ({', '.join(missing)} missing)"
    try:
        af.tensors(folder)
        json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        for state in sorted(folder.glob("*.pt*")):  # torch.save files are zip archives
            with zipfile.ZipFile(state) as archive:
                if archive.testzip() is not None:
                    return f"{state.name} is corrupt or truncated"
    except (A3DuckError, ValueError, OSError, zipfile.BadZipFile) as exc:
        return f"damaged ({type(exc).__name__}: {exc})"
    return None
