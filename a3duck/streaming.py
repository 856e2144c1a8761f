"""Streaming training data: rows read, validated and tokenised on the fly, never all in memory.

``streaming: true`` in a recipe turns ``data`` into a ``datasets.IterableDataset``: local JSONL /
CSV / Parquet files are read row by row (the same row numbers and row errors as the in-memory
path: a bad row stops the run, or is skipped and counted with ``skip_bad_rows``), Hub ids with
``datasets``' own streaming. TRL packs the stream as it comes. A stream has no length, so
``max_steps`` is required (checked by the config); a mixture needs weights (each draw picks a
source with its probability, seeded; a source that runs out starts over). Exact duplicates are
not removed (that would need every row in memory). Resuming continues the stream where it
stopped: the Trainer reads past the batches already trained on (without training on them), so
the data order equals an uninterrupted run's, at the cost of reading those rows again.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from a3duck.data import (
    FILE_SUFFIXES,
    DataError,
    DataReport,
    _BadRow,
    detect_schema,
    is_conversational,
    to_example,
)
from a3duck.sources import Source, map_columns, parse_sources

PEEK_ROWS = 100  # rows read ahead to detect each source's schema


def iter_rows(source: Source) -> Iterator[Any]:
    """The rows of one source, one at a time (bad JSON lines as _BadRow with their number)."""
    path = Path(source.path).expanduser()
    if path.suffix.lower() not in FILE_SUFFIXES and not path.exists():
        yield from _iter_hub(source)
        return
    if not path.is_file():
        raise DataError(f"data file not found: {source.path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            yield from batch.to_pylist()
    elif suffix == ".csv":
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            yield from csv.DictReader(fh)
    else:
        yield from _iter_jsonl(path)


def _iter_jsonl(path: Path) -> Iterator[Any]:
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if lineno == 1 and line.lstrip().startswith("["):
                raise DataError(f"{path}: a JSON array cannot be streamed; use JSON Lines")
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                yield _BadRow(f"not valid JSON ({exc.msg})", lineno)


def _iter_hub(source: Source) -> Iterator[Any]:
    import datasets

    try:
        stream = datasets.load_dataset(source.path, split=source.split, streaming=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot use this id"
        raise DataError(f"cannot stream dataset {source.path!r} (split {source.split!r}) from "
                        f"the Hub: {type(exc).__name__}: {exc}") from None
    yield from stream


class SourceStream:
    """One source's rows with their numbers, its schema (from the first rows) and its report."""

    def __init__(self, source: Source):
        self.source, self.report = source, DataReport(source.label, public=source.public_label)
        self._rows = self._numbered()
        head = list(itertools.islice(self._rows, PEEK_ROWS))
        if not head:
            raise DataError(f"{source.label}: the dataset is empty")
        self.schema = detect_schema([r for _, r in head], source.label)
        self._rows = itertools.chain(head, self._rows)

    def _numbered(self) -> Iterator[tuple[int, Any]]:
        for number, row in enumerate(iter_rows(self.source), 1):
            yield getattr(row, "row", number), map_columns(row, self.source.columns)

    def next_row(self) -> tuple[int, Any] | None:
        return next(self._rows, None)

    def restart(self) -> None:
        self._rows = self._numbered()


def open_streams(config) -> list[SourceStream]:
    return [SourceStream(s) for s in parse_sources(config.data, config.data_split)]


def conversational(streams: list[SourceStream]) -> bool:
    return any(is_conversational(s.schema) for s in streams)


def examples(streams: list[SourceStream], template_name: str, skip_bad_rows: bool,
             seed: int, total: DataReport) -> Iterator:
    """Valid Examples of the stream, in mixture order; DataError on a bad row unless skipped.
    Rows read and bad rows are counted in each source's report and in ``total``."""
    rng = random.Random(seed)
    weights = [s.source.weight or 1.0 for s in streams]
    while True:
        stream = streams[0] if len(streams) == 1 else rng.choices(streams, weights=weights)[0]
        item = stream.next_row()
        if item is None:
            if len(streams) == 1:
                return
            stream.restart()
            continue
        number, row = item
        stream.report.total_rows += 1
        total.total_rows += 1
        result = to_example(row, number, stream.schema, template_name)
        if isinstance(result, str):
            stream.report.bad_rows.append((number, result))
            total.bad_rows.append((number, result))
            if not skip_bad_rows:
                raise DataError(f"{stream.source.label}: invalid row {number}: {result}. Fix it, "
                                "or pass --skip-bad-rows to drop invalid rows.")
            continue
        stream.report.kept += 1
        yield result
