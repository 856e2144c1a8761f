"""Helpers for the evaluation tests: a small --data-dir copied from ../shared/data."""

from __future__ import annotations

import shutil
from pathlib import Path

MMLU_SUBJECTS = ("anatomy", "astronomy")


def small_data_dir(shared: Path, dest: Path, subjects=MMLU_SUBJECTS) -> Path:
    """arc/, hellaswag/, truthfulqa/ as they are and only ``subjects`` of MMLU (dev + val)."""
    for name in ("arc", "hellaswag", "truthfulqa"):
        shutil.copytree(shared / name, dest / name)
    for split in ("dev", "val"):
        (dest / "mmlu" / split).mkdir(parents=True)
        for s in subjects:
            shutil.copy(shared / "mmlu" / split / f"{s}_{split}.csv", dest / "mmlu" / split)
    for p in dest.rglob("*"):  # the shared copies are read-only; tests edit some
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest
