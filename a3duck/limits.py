"""The one rule for numbers a user gives, and for the vectors an adapter holds.

Every numeric input — recipe fields and flags (via :mod:`a3duck.config_checks`), mix weights,
a mixture's weights and epochs, ``eval --limit``, the Space's sampling parameters — goes through
:func:`number_problem` / :func:`check_number`: it must be a finite number, in its range, and the
message names the parameter. The range is part of the rule: a value whose *result* would not be
finite or would not fit in memory is refused with its name, never clamped.

Every adapter written or loaded goes through :func:`require_finite` (the one check that its
vectors are finite), which names the file: a NaN adapter is never written, loaded or served.
This module imports nothing heavy (torch only inside :func:`require_finite`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from a3duck.errors import A3DuckError, ConfigError, ModelError

# Counts (steps, batch sizes, token budgets, documents): more than any run uses, and small enough
# that every library below (numpy int64, torch, lm-eval's slicing) handles them.
MAX_COUNT = 10**9
# Passes over a data source: more than any run makes; a3duck lists every (source, row) of an
# epoch-counted mixture in memory, so the product is bounded too (MAX_MIXTURE_ROWS).
MAX_EPOCHS = 10_000
# Rows of an in-memory mixture order (~100 bytes each: 2 GB); beyond, stream with weights.
MAX_MIXTURE_ROWS = 20_000_000


def number_problem(value: Any, *, low: float | None = None, high: float | None = None,
                   above: bool = False, integer: bool = False) -> str | None:
    """Why ``value`` is not a usable number (finite; ``low <= value <= high``, or
    ``value > low`` with ``above``; whole with ``integer``), or None when it is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number, got {value!r}"
    if not math.isfinite(value):
        bound = f" {'>' if above else '>='} {_show(low)}" if low is not None and high is None \
            else ""
        return f"must be a finite number{bound}, got {value}"
    if integer and value != int(value):
        return f"must be a whole number, got {value}"
    if low is not None and high is not None and not above and not low <= value <= high:
        return f"must be between {_show(low)} and {_show(high)}, got {_show(value)}"
    if low is not None and (value <= low if above else value < low):
        return f"must be {'>' if above else '>='} {_show(low)}, got {_show(value)}"
    if high is not None and value > high:
        return f"must be at most {_show(high)}, got {_show(value)}"
    return None


def check_number(name: str, value: Any, *, error: type[A3DuckError] = ConfigError,
                 **rule) -> Any:
    """``value`` (a float or int, or a string holding one) if it passes :func:`number_problem`;
    ``error`` naming ``name`` if not."""
    parsed = _parse(value, integer=rule.get("integer", False))
    problem = number_problem(parsed, **rule)
    if problem:
        raise error(f"{name} {problem}")
    return int(parsed) if rule.get("integer") else parsed


def _parse(value: Any, integer: bool) -> Any:
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text) if integer and text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            return value
    return value


def _show(x: float) -> str:
    """1,000,000 for whole numbers a reader can count, 1e+20 / 0.0004 otherwise."""
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{float(x):g}"


# ----------------------------------------------------------------------------- adapter vectors

def non_finite(tensors: Mapping[str, Any]) -> tuple[str, int, int] | None:
    """(first key, values that are NaN, values that are +-inf) of the first tensor holding a
    non-finite value, or None when every value is finite."""
    import torch

    for key, tensor in tensors.items():
        if not torch.is_tensor(tensor) or not tensor.is_floating_point():
            continue
        bad = ~torch.isfinite(tensor)
        if bool(bad.any()):
            return key, int(torch.isnan(tensor).sum()), int(torch.isinf(tensor).sum())
    return None


def require_finite(tensors: Mapping[str, Any], path: Any, *, writing: bool = False) -> None:
    """ModelError naming ``path`` when any vector of an adapter holds NaN or inf.

    The one check for every adapter a3duck writes (``writing=True``: nothing is written) or
    loads (train, mix, merge, DPO, export, inspect, eval, the Space's zoo)."""
    found = non_finite(tensors)
    if found is None:
        return
    key, nans, infs = found
    what = ", ".join(part for part in (f"{nans} NaN" if nans else "",
                                       f"{infs} infinite" if infs else "") if part)
    if writing:
        raise ModelError(f"refusing to write {path}: the adapter's vectors are not finite ({what} "
                         f"value(s) in {key}); nothing was written")
    raise ModelError(f"adapter file {path} holds non-finite values ({what} value(s) in {key}); "
                     "it cannot be used: retrain it (a lower --learning-rate) or re-create it")


def flag(*, low: float | None = None, high: float | None = None, above: bool = False,
         integer: bool = True):
    """An argparse ``type=`` for a numeric flag following the one rule: argparse names the flag
    in its message and exits 2 before the command starts any work."""
    import argparse

    def parse(text: str):
        try:
            return check_number("value", text, low=low, high=high, above=above, integer=integer)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix("value ")) from None

    parse.__name__ = "whole number" if integer else "number"  # argparse's "invalid X value"
    return parse
