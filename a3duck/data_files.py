"""THE reader of training data files and Hub datasets (:func:`read_rows`), in memory and
streamed: ``(row number, row)`` pairs, a line that cannot be read as a :class:`BadRow` with its
number, and one message for a path that is no data file (a folder, a symbolic-link loop, a text
file in UTF-16/UTF-32). Validation per schema: :mod:`a3duck.data`.

Row numbers are 1-based: JSONL line numbers, CSV data rows, positions in a JSON array, Parquet
file or Hub dataset.
"""

from __future__ import annotations

import codecs
import csv
import errno
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a3duck.errors import DataError

FILE_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv")


def load_rows(spec: str, split: str = "train") -> list[Any]:
    """Rows of a local file (JSON, JSONL, Parquet, CSV) or a Hub dataset id (bad lines as
    invalid rows); :func:`load_numbered` keeps each row's number."""
    return [row for _, row in read_rows(spec, split)]


def load_numbered(spec: str, split: str = "train") -> list[tuple[int, Any]]:
    """``(row number, row)`` of every row, in memory."""
    return list(read_rows(spec, split))


def read_rows(spec: str, split: str = "train", streaming: bool = False
              ) -> Iterator[tuple[int, Any]]:
    """THE reader of training data, in memory and streamed: ``(row number, row)`` one at a time
    (1-based; JSONL: the line number; CSV: the data row), a line that cannot be read as an
    invalid row with its number. ``streaming`` only changes what cannot be streamed (a JSON
    array) and reads Hub ids with ``datasets``' streaming."""
    path = local_file(spec)
    if path is not None:
        yield from _file_rows(path, streaming)
    else:
        yield from enumerate(_hub_rows(spec, split, streaming), 1)


def local_file(spec: str) -> Path | None:
    """The data file ``spec`` names, or None for a Hub dataset id; DataError for a local path
    that is no data file (missing, a folder, a dangling or looping symbolic link)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in FILE_SUFFIXES)
        holds = f" (it holds {', '.join(found[:5])}{' ...' if len(found) > 5 else ''})"
        raise DataError(f"{spec} is a folder: pass one data file ({', '.join(FILE_SUFFIXES)})"
                        f"{holds if found else ''}, or list several files as the sources of "
                        "a mixture")
    if path.is_symlink() and not path.exists():
        try:
            path.stat()
        except OSError as exc:
            why = ("loops back on itself" if exc.errno == errno.ELOOP
                   else f"points to {os.readlink(path)}, which does not exist")
            raise DataError(f"{spec} is a symbolic link that {why}: point it at a data "
                            "file") from None
    if path.suffix.lower() in FILE_SUFFIXES or path.exists():
        if not path.is_file():
            raise DataError(f"data file not found: {spec}")
        return path
    return None


def _file_rows(path: Path, streaming: bool) -> Iterator[tuple[int, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from enumerate(_parquet_rows(path), 1)
        return
    _check_utf8(path)
    # surrogateescape keeps undecodable bytes visible so they are reported per row.
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        if suffix == ".csv":
            yield from _csv_rows(fh, path)
            return
        lines = enumerate(fh, 1)
        for lineno, line in lines:
            if not line.strip():
                continue
            if suffix == ".json" and line.lstrip().startswith("["):
                if streaming:
                    raise DataError(f"{path}: a JSON array cannot be streamed; use JSON Lines")
                yield from enumerate(_json_array(line + fh.read(), path), 1)
                return
            yield lineno, _json_line(line, lineno)
            break
        for lineno, line in lines:
            if line.strip():
                yield lineno, _json_line(line, lineno)


# Byte-order marks of the wide encodings (UTF-32 first: its LE mark starts with UTF-16's).
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def _check_utf8(path: Path) -> None:
    """DataError for a text file in UTF-16/UTF-32 (with a byte-order mark, or NUL bytes at its
    start): every line would otherwise be a bad row. A UTF-8 mark is accepted (utf-8-sig)."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    wide = next((name for bom, name in _WIDE_BOMS if head.startswith(bom)), None)
    if wide or b"\x00" in head:
        encoding = f"{wide} encoded" if wide else "not UTF-8 text (it holds NUL bytes)"
        raise DataError(f"{path}: {encoding}; save it as UTF-8 (e.g. `iconv -f "
                        f"{wide or 'UTF-16'} -t UTF-8 {path.name} > {path.stem}.utf8"
                        f"{path.suffix}`)")


def _json_line(line: str, lineno: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        return BadRow(f"not valid JSON ({exc.msg})", lineno)
    except RecursionError:
        return BadRow("JSON nested too deeply to read", lineno)


def _json_array(text: str, path: Path) -> list[Any]:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to read") from None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON array of objects or JSON Lines")
    return rows


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            yield from batch.to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc}); is it truncated or in "
                        "another format?") from None


def _csv_rows(lines: Iterable[str], path: Path) -> Iterator[tuple[int, Any]]:
    """Rows as dicts; a row with more fields than the header is a bad row (1-based data row)."""
    try:
        for number, row in enumerate(csv.DictReader(lines, restkey=_EXTRA), 1):
            extra = row.pop(_EXTRA, None)
            yield number, (BadRow(f"has {len(row) + len(extra)} fields, the header has "
                                   f"{len(row)}", number) if extra else row)
    except csv.Error as exc:
        raise DataError(f"{path}: not valid CSV ({exc})") from None


_EXTRA = object()  # DictReader's key for fields beyond the header


@dataclass
class BadRow:
    reason: str
    row: int


def _hub_rows(dataset_id: str, split: str, streaming: bool) -> Iterable[Any]:
    import datasets

    try:
        rows = datasets.load_dataset(dataset_id, split=split, streaming=streaming)
        return rows if streaming else list(rows)
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot use this id"
        raise DataError(
            f"cannot {'stream' if streaming else 'load'} dataset {dataset_id!r} (split "
            f"{split!r}) from the Hub: {type(exc).__name__}: {exc}. Pass a local "
            ".json/.jsonl/.parquet/.csv file instead."
        ) from None
