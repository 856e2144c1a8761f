"""Streaming training data: rows read, validated and tokenised on the fly, never all in memory.

``streaming: true`` in a recipe turns ``data`` into a ``datasets.IterableDataset``: rows come
from the one reader of :mod:`a3duck.data` (:func:`~a3duck.data.read_rows`: the same rows, row
numbers and row errors as the in-memory path; a bad row stops the run with the same message, or
is skipped and counted with ``skip_bad_rows``), Hub ids with ``datasets``' own streaming. TRL
packs the stream as it comes. A stream has no length, so ``max_steps`` is required (checked by the config); a mixture needs weights (each draw picks a
source with its probability, seeded; a source that runs out starts over). Exact duplicates are
not removed (that would need every row in memory). Resuming continues the stream where it
stopped: the Trainer reads past the batches already trained on (without training on them), so
the data order equals an uninterrupted run's, at the cost of reading those rows again.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

from a3duck.data import (
    DataError,
    DataReport,
    bad_rows_error,
    check_row,
    detect_schema,
    is_conversational,
    read_rows,
)
from a3duck.sources import Source, map_columns, parse_sources

PEEK_ROWS = 100  # rows read ahead to detect each source's schema


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
        for number, row in read_rows(self.source.path, self.source.split, streaming=True):
            yield number, map_columns(row, self.source.columns)

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
        total.total_rows += 1
        result = check_row(row, number, stream.schema, template_name, stream.report)
        if result is None:
            total.bad_rows.append(stream.report.bad_rows[-1])
            if not skip_bad_rows:
                raise bad_rows_error(stream.source.label, stream.report, streamed=True)
            continue
        stream.report.kept += 1
        yield result
