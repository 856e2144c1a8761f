"""Training data: load, validate, normalise schemas, deduplicate, render and tokenise.

Accepted schemas (detected from the columns):
- Open-Platypus / Alpaca: ``instruction``, ``input`` (optional), ``output`` (``data_source`` kept);
- GPTeacher: ``instruction``, ``input``, ``response``;
- plain ``prompt`` / ``completion``: used verbatim, no template.
Instruction rows are rendered with the recipe's template (:mod:`a3duck.prompts`).

Row numbers in reports are 1-based positions in the file (JSONL: line numbers).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from a3duck.errors import DataError
from a3duck.files import public_name
from a3duck.prompts import get_template

log = logging.getLogger(__name__)

FILE_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv")
ANSWER_KEYS = ("output", "response", "completion")
_SURROGATE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)




@dataclass
class Example:
    prompt: str
    completion: str
    row: int  # 1-based row number in the source


@dataclass
class DataReport:
    """What happened to every row; printed before training and saved with the adapter."""

    source: str
    total_rows: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)
    duplicates: int = 0
    too_long: int = 0
    truncated: int = 0
    dropped_too_long: int = 0
    kept: int = 0

    def bad_summary(self, limit: int = 10) -> str:
        lines = [f"  row {row}: {why}" for row, why in self.bad_rows[:limit]]
        more = len(self.bad_rows) - limit
        if more > 0:
            lines.append(f"  ... and {more} more")
        return "\n".join(lines)

    def summary(self) -> str:
        return (
            f"{self.source}: {self.total_rows} rows, {len(self.bad_rows)} invalid, "
            f"{self.duplicates} exact duplicates removed, {self.too_long} over the cutoff "
            f"({self.truncated} truncated, {self.dropped_too_long} dropped), {self.kept} kept"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": public_name(self.source), "total_rows": self.total_rows,
            "invalid_rows": len(self.bad_rows),
            "invalid_row_numbers": [row for row, _ in self.bad_rows],
            "duplicates_removed": self.duplicates,
            "over_cutoff": self.too_long, "truncated": self.truncated,
            "dropped_over_cutoff": self.dropped_too_long, "kept": self.kept,
        }


# ----------------------------------------------------------------------------- loading

def load_rows(spec: str, split: str = "train") -> list[dict[str, Any]]:
    """Rows of a local file (JSON, JSONL, Parquet, CSV) or a Hub dataset id."""
    path = Path(spec).expanduser()
    if path.suffix.lower() in FILE_SUFFIXES or path.exists():
        if not path.is_file():
            raise DataError(f"data file not found: {spec}")
        return _read_file(path)
    return _read_hub(spec, split)


def _read_file(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path)
    # surrogateescape keeps undecodable bytes visible so they are reported per row.
    text = path.read_bytes().decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    if suffix == ".csv":
        return _read_csv(text, path)
    if suffix == ".jsonl" or (suffix == ".json" and not text.lstrip().startswith("[")):
        return _read_jsonl(text, path)
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to read") from None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON array of objects or JSON Lines")
    return rows


def _read_jsonl(text: str, path: Path) -> list[dict[str, Any]]:
    rows: list[Any] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            rows.append(_BadRow(f"not valid JSON ({exc.msg})", lineno))
        except RecursionError:
            rows.append(_BadRow("JSON nested too deeply to read", lineno))
    return rows


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc}); is it truncated or in "
                        "another format?") from None


def _read_csv(text: str, path: Path) -> list[Any]:
    """Rows as dicts; a row with more fields than the header is a bad row (1-based data row)."""
    try:
        reader = csv.DictReader(io.StringIO(text), restkey=_EXTRA)
        rows: list[Any] = []
        for number, row in enumerate(reader, 1):
            extra = row.pop(_EXTRA, None)
            rows.append(_BadRow(f"has {len(row) + len(extra)} fields, the header has "
                                f"{len(row)}", number) if extra else row)
    except csv.Error as exc:
        raise DataError(f"{path}: not valid CSV ({exc})") from None
    return rows


_EXTRA = object()  # DictReader's key for fields beyond the header


@dataclass
class _BadRow:
    reason: str
    row: int


def _read_hub(dataset_id: str, split: str) -> list[dict[str, Any]]:
    import datasets

    try:
        return list(datasets.load_dataset(dataset_id, split=split))
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot use this id"
        raise DataError(
            f"cannot load dataset {dataset_id!r} (split {split!r}) from the Hub: "
            f"{type(exc).__name__}: {exc}. Pass a local .json/.jsonl/.parquet/.csv file instead."
        ) from None


# ----------------------------------------------------------------------------- schemas

def detect_schema(rows: Iterable[Any], source: str) -> str:
    """'prompt_completion' or 'instruction'; DataError when no accepted schema fits."""
    keys: set[str] = set()
    for row in rows:
        if isinstance(row, dict):
            keys |= set(row)
    if {"prompt", "completion"} <= keys:
        return "prompt_completion"
    if "instruction" in keys and keys & {"output", "response"}:
        return "instruction"
    raise DataError(
        f"{source}: unrecognised schema (columns: {', '.join(sorted(keys)) or 'none'}). "
        "Expected instruction/input/output (Alpaca, Open-Platypus), instruction/input/response "
        "(GPTeacher) or prompt/completion."
    )


def to_example(row: Any, number: int, schema: str, template_name: str) -> Example | str:
    """An Example, or the reason the row is invalid."""
    if isinstance(row, _BadRow):
        return row.reason
    if not isinstance(row, dict):
        return f"expected an object, got {type(row).__name__}"
    if schema == "prompt_completion":
        prompt, answer, extra = row.get("prompt"), row.get("completion"), None
        names = ("prompt", "completion")
    else:
        prompt, extra = row.get("instruction"), row.get("input")
        answer = next((row[k] for k in ANSWER_KEYS if row.get(k) not in (None, "")), None)
        names = ("instruction", "output/response")
    for name, value in ((names[0], prompt), (names[1], answer), ("input", extra)):
        problem = _text_problem(value, required=name != "input")
        if problem:
            return f"{name} {problem}"
    if schema == "prompt_completion":
        return Example(prompt=prompt, completion=answer, row=number)
    rendered = get_template(template_name).render(prompt.strip(), (extra or "").strip() or None)
    return Example(prompt=rendered, completion=answer, row=number)


def _text_problem(value: Any, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "is missing or empty" if required else None
    if not isinstance(value, str):
        return f"must be text, got {type(value).__name__}"
    if _SURROGATE.search(value):
        return "contains bytes that are not valid UTF-8"
    return None


def normalise(rows: list[Any], source: str, template_name: str, skip_bad_rows: bool,
              report: DataReport) -> list[Example]:
    """Validate and render rows, drop exact duplicates; DataError on invalid rows unless skipped."""
    report.total_rows = len(rows)
    schema = detect_schema(rows, source)
    examples: list[Example] = []
    seen: set[tuple[str, str]] = set()
    for number, row in enumerate(rows, 1):
        result = to_example(row, getattr(row, "row", number), schema, template_name)
        if isinstance(result, str):
            report.bad_rows.append((getattr(row, "row", number), result))
            continue
        key = (result.prompt, result.completion)
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        examples.append(result)
    if report.bad_rows and not examples:
        raise DataError(f"{source}: every row is invalid ({len(rows)} of {len(rows)}):\n"
                        f"{report.bad_summary()}\nCheck the file's format and columns.")
    if report.bad_rows and not skip_bad_rows:
        raise DataError(
            f"{source}: {len(report.bad_rows)} invalid row(s) of {len(rows)}:\n"
            f"{report.bad_summary()}\nFix them, or pass --skip-bad-rows to drop them."
        )
    if report.bad_rows:
        log.warning("%s: skipped %d invalid row(s) of %d (--skip-bad-rows; every number is in "
                    "data_report.json):\n%s", source, len(report.bad_rows), len(rows),
                    report.bad_summary())
    return examples


# ----------------------------------------------------------------------------- tokenising

def tokenize_example(ex: Example, tokenizer, add_eos: bool) -> tuple[list[int], list[int]]:
    """(input_ids, completion_mask): prompt with the tokenizer's specials (BOS on Llama), answer
    without, EOS appended when ``add_eos``. mask 1 marks tokens the loss sees."""
    prompt_ids = tokenizer(ex.prompt, add_special_tokens=True)["input_ids"]
    answer_ids = tokenizer(ex.completion, add_special_tokens=False)["input_ids"]
    if add_eos and tokenizer.eos_token_id is not None:
        answer_ids = answer_ids + [tokenizer.eos_token_id]
    return prompt_ids + answer_ids, [0] * len(prompt_ids) + [1] * len(answer_ids)


def tokenize_examples(examples: list[Example], tokenizer, *, cutoff_len: int, add_eos: bool,
                      too_long: str, report: DataReport) -> dict[str, list]:
    """Columns ``input_ids`` and ``completion_mask``, applying the cutoff policy.

    Rows whose prompt alone fills the cutoff leave no answer to learn from and are dropped in
    both modes (counted as dropped)."""
    columns: dict[str, list] = {"input_ids": [], "completion_mask": []}
    for ex in examples:
        ids, mask = tokenize_example(ex, tokenizer, add_eos)
        if len(ids) > cutoff_len:
            report.too_long += 1
            if too_long == "drop" or not any(mask[:cutoff_len]):
                report.dropped_too_long += 1
                continue
            report.truncated += 1
            ids, mask = ids[:cutoff_len], mask[:cutoff_len]
        columns["input_ids"].append(ids)
        columns["completion_mask"].append(mask)
    report.kept = len(columns["input_ids"])
    if not report.kept:
        raise DataError(
            f"{report.source}: no trainable rows left: {report.too_long} of {len(examples)} "
            f"rows are longer than cutoff_len={cutoff_len} tokens and were dropped. Raise "
            "--cutoff-len, use too_long: truncate, or shorten the prompts."
        )
    return columns


def prepare_dataset(config, tokenizer):
    """Load, validate and tokenise ``config.data``. Returns (datasets.Dataset, DataReport)."""
    import datasets

    report = DataReport(source=config.data)
    rows = load_rows(config.data, config.data_split)
    if not rows:
        raise DataError(f"{config.data}: the dataset is empty")
    examples = normalise(rows, config.data, config.prompt_template, config.skip_bad_rows, report)
    columns = tokenize_examples(
        examples, tokenizer, cutoff_len=config.cutoff_len, add_eos=config.add_eos_token,
        too_long=config.too_long, report=report,
    )
    return datasets.Dataset.from_dict(columns), report
