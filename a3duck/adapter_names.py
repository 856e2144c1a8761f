"""One rule for an adapter's display name, in every command that names adapters (`a3duck eval`'s
result labels, `a3duck serve`'s ``model`` ids, the Space's dropdown, `a3duck compare`).

``NAME=SOURCE`` sets the name. Otherwise a Hub id names itself and a local folder is named by its
folder name — or, for a folder with a generic name (``adapter``, what ``a3duck train`` writes,
``out``, ``output``, ``final``, ``checkpoint-*``), by the nearest parent that is not generic, so
``runs/duck/adapter`` is ``duck`` and ``runs/duck/checkpoint-40`` is ``duck-checkpoint-40``.
Where names collide, ``-2``, ``-3``… are added (``duck``, ``duck-2``); two ``NAME=`` that
collide are refused. ``base`` is reserved for the base model.
"""

from __future__ import annotations

import re
from pathlib import Path

from a3duck.errors import ConfigError

BASE = "base"  # the name of "no adapter" in every selection (reserved)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,95}$")
GENERIC = ("adapter", "adapters", "out", "output", "outputs", "final", "model", "")
_CHECKPOINT = re.compile(r"^checkpoint-\d+$")


def split_spec(spec: str) -> tuple[str | None, str]:
    """``(name, source)`` for ``NAME=SOURCE``; ``(None, spec)`` when no valid name is given (a
    Windows-style or odd path with ``=`` in it stays a path)."""
    name, sep, source = spec.partition("=")
    if sep and name and source and NAME_RE.match(name):
        return name, source
    return None, spec


def default_name(source: str) -> str:
    """The display name of an unnamed source (see the module's docstring)."""
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return source  # a Hub id names itself
    folder = folder.resolve()
    suffix = folder.name if _CHECKPOINT.match(folder.name) else ""
    while _generic(folder.name) and folder.parent != folder:
        folder = folder.parent
    name = folder.name or "adapter"
    return f"{name}-{suffix}" if suffix and name != suffix else name


def _generic(name: str) -> bool:
    return name.lower() in GENERIC or bool(_CHECKPOINT.match(name))


def display_names(specs: list[str], reserved: tuple[str, ...] = (BASE,)) -> list[tuple[str, str]]:
    """``[(display name, source)]``, one distinct name per spec, in order."""
    out, used = [], set(reserved)
    for spec in specs:
        name, source = split_spec(spec)
        if name is not None:
            if name in used:
                raise ConfigError(f"adapter name {name!r} is used twice (or is reserved): "
                                  "give each NAME=... its own name")
        else:
            stem = name = default_name(source)
            n = 2
            while name in used:
                name, n = f"{stem}-{n}", n + 1
        used.add(name)
        out.append((name, source))
    return out
