"""The import contract of DESIGN.md ("Three products on one library"), held statically over every
module of the package: top-level, function-level and type-only (``if TYPE_CHECKING:``) imports.

- the core (``a3duck/*.py`` but the entry points ``cli.py`` and ``__main__.py``) imports
  nothing from evaluation/, publish/, space/, commands/ or cli.py;
- evaluation/ and publish/ import nothing from space/ or commands/;
- space/ imports nothing from commands/ or cli.py;
- a serving package (``a3duck/serving/``, if one comes) imports only the core and evaluation/;
- no two modules import each other, directly or in a ring.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "a3duck"
UPPER = ("a3duck.evaluation", "a3duck.publish", "a3duck.space", "a3duck.commands", "a3duck.cli")
FORBIDDEN = {  # layer -> what it must not import (a name and everything under it)
    "core": UPPER,
    "a3duck.evaluation": ("a3duck.space", "a3duck.commands"),
    "a3duck.publish": ("a3duck.space", "a3duck.commands"),
    "a3duck.space": ("a3duck.commands", "a3duck.cli"),
    "a3duck.serving": ("a3duck.publish", "a3duck.space", "a3duck.commands", "a3duck.cli"),
}


def module_name(path: Path) -> str:
    parts = ("a3duck", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path) -> set[str]:
    """Every a3duck module ``name`` imports, anywhere in the file (resolved to modules: ``from
    a3duck import models`` is a3duck.models, ``from a3duck.models import load`` a3duck.models)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in MODULES else base)
    return {m for m in out if m == "a3duck" or m.startswith("a3duck.")}


GRAPH = {name: imported(name, path) & set(MODULES) for name, path in MODULES.items()}


def layer(name: str) -> str:
    for top in FORBIDDEN:
        if top != "core" and (name == top or name.startswith(top + ".")):
            return top
    if name in ("a3duck.cli", "a3duck.__main__"):  # the entry points (`python -m a3duck`)
        return "cli"
    return "commands" if name.startswith("a3duck.commands") else "core"


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_scan_sees_every_kind_of_import():
    """The scan finds the imports this contract is about: function-level, type-only, relative."""
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
              "    from a3duck.space import ui\ndef f():\n    import a3duck.publish.card\n    from . import models\n")
    probe = PACKAGE / "_contract_probe.py"
    try:
        probe.write_text(source, encoding="utf-8")
        found = imported("a3duck._contract_probe", probe)
    finally:
        probe.unlink()
    assert {"a3duck.space.ui", "a3duck.publish.card", "a3duck.models"} <= found
    assert len(MODULES) > 60 and GRAPH["a3duck.models"]  # the whole package was read


def test_layers_import_only_downwards():
    broken = [f"{name} ({layer(name)}) imports {dep}"
              for name, deps in sorted(GRAPH.items()) for dep in sorted(deps)
              if layer(name) in FORBIDDEN and _under(dep, FORBIDDEN[layer(name)])]
    assert broken == []


def test_no_import_cycles():
    """Tarjan's strongly connected components: any with two or more modules is a ring."""
    index, low, stack, on_stack, rings = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            ring = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                ring.append(w)
                if w == v:
                    break
            if len(ring) > 1:
                rings.append(sorted(ring))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert rings == []
