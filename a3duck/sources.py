"""Where training data comes from: one file or Hub id, or a mixture of several sources.

``data:`` in a recipe is a string (one source, read as it is) or a list of sources, each a
string or a mapping::

    data:
      - path: garage-bAInd/Open-Platypus          # a file or a Hub dataset id
        weight: 0.5                               # sampling probability (or `epochs: 2`)
      - path: Open-Orca/OpenOrca
        split: train
        columns: {system: system_prompt, user: question, assistant: response}
        weight: 0.5

``columns`` maps the fields of a known schema onto the source's own columns (``field: column``):
instruction/input/output (or response), prompt/completion, messages, conversations, or
system/user/assistant (one turn each, making a conversation). With weights, every draw picks a
source with that probability (seeded) and takes that source's next row in a shuffled order; the
mixture has as many rows as all sources together kept. With ``epochs`` (default 1) every row of a
source is used that many times (a fraction draws a seeded random part).

This module imports nothing heavy: the config validates ``data`` with :func:`parse_sources`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a3duck.errors import ConfigError
from a3duck.limits import MAX_EPOCHS, MAX_MIXTURE_ROWS, check_number

TURN_FIELDS = ("system", "user", "assistant")
SCHEMA_FIELDS = ("instruction", "input", "output", "response", "prompt", "completion",
                 "messages", "conversations", *TURN_FIELDS)
SOURCE_KEYS = ("path", "split", "columns", "weight", "epochs")


@dataclass(frozen=True)
class Source:
    path: str
    split: str = "train"
    columns: dict[str, str] | None = None  # schema field -> the source's column
    weight: float | None = None  # sampling probability (normalised over the sources)
    epochs: float | None = None  # passes over this source (default 1)

    @property
    def label(self) -> str:
        return self.path if self.split == "train" else f"{self.path} ({self.split})"

    @property
    def public_label(self) -> str:
        """The label with a local path by its last part (a3duck.files.public_name)."""
        from a3duck.files import public_name

        name = public_name(self.path)
        return name if self.split == "train" else f"{name} ({self.split})"


def parse_sources(data: Any, default_split: str = "train") -> list[Source]:
    """The sources of ``data`` (string or list); ConfigError naming every problem."""
    sources, problems = _parse(data, default_split)
    if problems:
        raise ConfigError("; ".join(problems))
    return sources


def source_problems(data: Any, default_split: str = "train") -> list[str]:
    """Every problem of ``data`` (for config_checks' one-message validation); [] when usable."""
    return _parse(data, default_split)[1]


def _parse(data: Any, default_split: str) -> tuple[list[Source], list[str]]:
    if isinstance(data, str):
        return [Source(path=data, split=default_split)], []
    if not isinstance(data, list) or not data:
        return [], ["data must be a file, a Hub dataset id, or a non-empty list of sources"]
    sources, problems = [], []
    for i, item in enumerate(data, 1):
        try:
            sources.append(_source(item, default_split))
        except ConfigError as exc:
            problems.append(f"data source {i}: {exc}")
    problems += _repeated(sources)
    weighted = [s.weight is not None for s in sources]
    if any(weighted) and not all(weighted):
        problems.append("data: give every source a weight, or none (use epochs instead)")
    elif all(weighted) and sources and not math.isfinite(sum(s.weight for s in sources)):
        problems.append("data: the weights add up to more than a number can hold; give "
                        "smaller weights (only their ratios matter)")
    return sources, problems


def _repeated(sources: list[Source]) -> list[str]:
    """A source listed twice would be read twice (its rows doubled, not deduplicated: duplicates
    are removed within a source): one problem per repeat, with what to write instead."""
    seen: dict[tuple, int] = {}
    problems = []
    for i, source in enumerate(sources, 1):
        where = Path(source.path).expanduser()
        key = (str(where.resolve()) if where.exists() else source.path, source.split,
               tuple(sorted((source.columns or {}).items())))
        if key in seen:
            problems.append(f"data sources {seen[key]} and {i} are the same ({source.label}): "
                            "list it once, with `epochs: 2` (or a larger weight) to use it more")
        seen.setdefault(key, i)
    return problems


def _source(item: Any, default_split: str) -> Source:
    if isinstance(item, str):
        return Source(path=item, split=default_split)
    if not isinstance(item, dict):
        raise ConfigError(f"expected a path or a mapping, got {type(item).__name__}")
    unknown = sorted(set(item) - set(SOURCE_KEYS))
    if unknown or not isinstance(item.get("path"), str) or not item["path"]:
        raise ConfigError(f"needs a `path` and only the keys {', '.join(SOURCE_KEYS)}"
                          + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    if item.get("weight") is not None and item.get("epochs") is not None:
        raise ConfigError("give weight or epochs, not both")
    numbers = {key: check_number(key, item[key], low=0, above=True, high=high)  # a3duck.limits
               for key, high in (("weight", None), ("epochs", MAX_EPOCHS))
               if item.get(key) is not None}
    columns = item.get("columns")
    if columns is not None:
        if not isinstance(columns, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in columns.items()):
            raise ConfigError("columns must map schema fields to column names")
        bad = sorted(set(columns) - set(SCHEMA_FIELDS))
        if bad:
            raise ConfigError(f"unknown schema field(s) in columns: {', '.join(bad)}; known: "
                              f"{', '.join(SCHEMA_FIELDS)}")
    return Source(path=item["path"], split=str(item.get("split") or default_split),
                  columns=columns, weight=numbers.get("weight"), epochs=numbers.get("epochs"))


def map_columns(row: Any, columns: dict[str, str] | None) -> Any:
    """A row renamed onto a known schema; system/user/assistant fields become ``messages``."""
    if not columns or not isinstance(row, dict):
        return row
    mapped = {field: row.get(column) for field, column in columns.items()}
    if not set(mapped) & set(TURN_FIELDS):
        return mapped
    turns = [{"role": role, "content": mapped.pop(role)} for role in TURN_FIELDS if role in mapped]
    # An empty system prompt (most OpenOrca rows) is no turn at all.
    turns = [t for t in turns if not (t["role"] == "system" and t["content"] in (None, ""))]
    return {**mapped, "messages": turns}


def mixture_order(sizes: list[int], sources: list[Source], seed: int,
                  draws: int | None = None) -> list[tuple[int, int]]:
    """(source index, row index) of every row of the mixture, deterministic for ``seed``."""
    rng = random.Random(seed)
    if sources and sources[0].weight is not None:
        return _weighted(sizes, [s.weight for s in sources], rng,
                         sum(sizes) if draws is None else draws)
    total = sum(size * (1.0 if s.epochs is None else float(s.epochs))
                for size, s in zip(sizes, sources))
    if total > MAX_MIXTURE_ROWS:  # refused before the list is built (a MemoryError otherwise)
        raise ConfigError(f"data: the epochs ask for {total:,.0f} rows, at most "
                          f"{MAX_MIXTURE_ROWS:,} fit in memory; use fewer epochs, or weights "
                          "with streaming: true and max_steps")
    order: list[tuple[int, int]] = []
    for i, (size, src) in enumerate(zip(sizes, sources)):
        epochs = 1.0 if src.epochs is None else float(src.epochs)
        rows = list(range(size)) * int(epochs)
        rows += sorted(rng.sample(range(size), round((epochs - int(epochs)) * size)))
        order += [(i, r) for r in rows]
    return order


def _weighted(sizes: list[int], weights: list[float], rng: random.Random,
              draws: int) -> list[tuple[int, int]]:
    live = [i for i, n in enumerate(sizes) if n]
    queues: dict[int, list[int]] = {i: [] for i in live}
    order = []
    for src in rng.choices(live, weights=[weights[i] for i in live], k=draws) if live else []:
        if not queues[src]:  # a fresh shuffled pass over this source
            queues[src] = rng.sample(range(sizes[src]), sizes[src])
        order.append((src, queues[src].pop()))
    return order
