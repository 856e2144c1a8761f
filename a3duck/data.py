"""Training data: the one reader of rows (:func:`read_rows`, in memory and streamed), their
validation per schema, duplicates, the data report and rendering (tokenising is
:mod:`a3duck.dataset`).

Accepted schemas (detected from the columns):
- Open-Platypus / Alpaca: ``instruction``, ``input`` (optional), ``output`` (``data_source`` kept);
- GPTeacher: ``instruction``, ``input``, ``response``;
- plain ``prompt`` / ``completion``: used verbatim, no template;
- conversations: ``messages`` (``role``/``content``: system, user, assistant) or ShareGPT
  ``conversations`` (``from``/``value``: system, human, gpt), any number of turns.
Rows are rendered with the recipe's template (:mod:`a3duck.prompts`); under ``chat`` an
instruction row is one user turn and one assistant turn. The loss sees every assistant turn.
Mixtures of several sources: :mod:`a3duck.sources`.

Row numbers in reports are 1-based: JSONL line numbers, CSV data rows, positions in a JSON array,
Parquet file or Hub dataset. An invalid row gives the same message in memory and streamed
(:func:`bad_rows_error`).
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from a3duck.errors import DataError
from a3duck.files import public_name
from a3duck.prompts import CHAT_NAME, get_template, user_text

log = logging.getLogger(__name__)

FILE_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv")
ANSWER_KEYS = ("output", "response", "completion")
CONVERSATION_SCHEMAS = {"messages": ("role", "content"), "conversations": ("from", "value")}
# ShareGPT speaker names -> roles (the `messages` schema uses the roles themselves).
SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}
_SURROGATE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)




@dataclass
class Example:
    prompt: str
    completion: str
    row: int  # 1-based row number in the source
    messages: list[dict] | None = None  # a conversation (rendered when tokenised)
    question: str = ""  # the row's prompt side as written (no template): instruction + input,
    # prompt, or the user turns; what contamination checks compare with benchmark questions

    @property
    def key(self) -> tuple:
        """What makes two rows exact duplicates."""
        if self.messages is None:
            return (self.prompt, self.completion)
        return tuple((m["role"], m["content"]) for m in self.messages)


@dataclass
class DataReport:
    """What happened to every row; printed before training and saved with the adapter."""

    source: str  # how messages name the data (a local path as given)
    total_rows: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)
    duplicates: int = 0
    too_long: int = 0
    cut_at_turn: int = 0
    truncated: int = 0
    dropped_too_long: int = 0
    kept: int = 0
    sampled: int | None = None  # rows drawn into a mixture (None: a single source)
    sources: list[DataReport] = field(default_factory=list)  # a mixture's per-source reports
    public: str | None = None  # what the saved data report records; None = public_name(source)

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
            f"({self.cut_at_turn} cut at a turn, {self.truncated} truncated, "
            f"{self.dropped_too_long} dropped), {self.kept} kept"
            + ("" if self.sampled is None else f", {self.sampled} sampled")
        ) + "".join(f"\n  {part.summary()}" for part in self.sources)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.public or public_name(self.source), "total_rows": self.total_rows,
            "invalid_rows": len(self.bad_rows),
            "invalid_row_numbers": [row for row, _ in self.bad_rows],
            "duplicates_removed": self.duplicates,
            "over_cutoff": self.too_long, "cut_at_turn_boundary": self.cut_at_turn,
            "truncated": self.truncated, "dropped_over_cutoff": self.dropped_too_long,
            "kept": self.kept, **({} if self.sampled is None else {"sampled": self.sampled}),
            **({"sources": [part.to_dict() for part in self.sources]} if self.sources else {}),
        }


# ----------------------------------------------------------------------------- loading

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
    path = Path(spec).expanduser()
    if path.suffix.lower() in FILE_SUFFIXES or path.exists():
        if not path.is_file():
            raise DataError(f"data file not found: {spec}")
        yield from _file_rows(path, streaming)
    else:
        yield from enumerate(_hub_rows(spec, split, streaming), 1)


def _file_rows(path: Path, streaming: bool) -> Iterator[tuple[int, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from enumerate(_parquet_rows(path), 1)
        return
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


def _json_line(line: str, lineno: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        return _BadRow(f"not valid JSON ({exc.msg})", lineno)
    except RecursionError:
        return _BadRow("JSON nested too deeply to read", lineno)


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
            yield number, (_BadRow(f"has {len(row) + len(extra)} fields, the header has "
                                   f"{len(row)}", number) if extra else row)
    except csv.Error as exc:
        raise DataError(f"{path}: not valid CSV ({exc})") from None


_EXTRA = object()  # DictReader's key for fields beyond the header


@dataclass
class _BadRow:
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


# ----------------------------------------------------------------------------- schemas

def detect_schema(rows: Iterable[Any], source: str) -> str:
    """'prompt_completion', 'instruction', 'messages' or 'conversations'; DataError otherwise."""
    keys: set[str] = set()
    for row in rows:
        if isinstance(row, dict):
            keys |= set(row)
    for name in CONVERSATION_SCHEMAS:
        if name in keys:
            return name
    if {"prompt", "completion"} <= keys:
        return "prompt_completion"
    if "instruction" in keys and keys & {"output", "response"}:
        return "instruction"
    raise DataError(
        f"{source}: unrecognised schema (columns: {', '.join(sorted(keys)) or 'none'}). "
        "Expected instruction/input/output (Alpaca, Open-Platypus), instruction/input/response "
        "(GPTeacher), prompt/completion, messages (role/content) or conversations (ShareGPT "
        "from/value); a source's `columns` can map other names onto these."
    )


def is_conversational(schema: str) -> bool:
    return schema in CONVERSATION_SCHEMAS


def to_example(row: Any, number: int, schema: str, template_name: str) -> Example | str:
    """An Example, or the reason the row is invalid."""
    if isinstance(row, _BadRow):
        return row.reason
    if not isinstance(row, dict):
        return f"expected an object, got {type(row).__name__}"
    if is_conversational(schema):
        turns = to_messages(row.get(schema), schema)
        if isinstance(turns, str):
            return turns
        asked = " ".join(t["content"] for t in turns if t["role"] == "user")
        return Example(prompt="", completion=turns[-1]["content"], row=number, messages=turns,
                       question=asked)
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
        return Example(prompt=prompt, completion=answer, row=number, question=prompt)
    instruction, extra = prompt.strip(), (extra or "").strip() or None
    asked = f"{instruction} {extra or ''}"
    if template_name == CHAT_NAME:
        turns = [{"role": "user", "content": user_text(instruction, extra)},
                 {"role": "assistant", "content": answer}]
        return Example(prompt="", completion=answer, row=number, messages=turns, question=asked)
    rendered = get_template(template_name).render(instruction, extra)
    return Example(prompt=rendered, completion=answer, row=number, question=asked)


def to_messages(turns: Any, schema: str) -> list[dict] | str:
    """The turns of a conversation as role/content dicts, or the reason they are invalid:
    an optional system turn, then user and assistant turns alternating, ending with the
    assistant."""
    if not isinstance(turns, list) or not turns:
        return f"{schema} must be a non-empty list of turns"
    role_key, text_key = CONVERSATION_SCHEMAS[schema]
    out = []
    for i, turn in enumerate(turns, 1):
        if not isinstance(turn, dict):
            return f"{schema} turn {i}: expected an object, got {type(turn).__name__}"
        role = turn.get(role_key)
        role = SHAREGPT_ROLES.get(role) if schema == "conversations" else role
        if role not in ("system", "user", "assistant"):
            known = SHAREGPT_ROLES if schema == "conversations" else ("system", "user", "assistant")
            return (f"{schema} turn {i}: unknown {role_key} {turn.get(role_key)!r} "
                    f"(expected {', '.join(known)})")
        problem = _text_problem(turn.get(text_key), required=True)
        if problem:
            return f"{schema} turn {i} ({role}): {text_key} {problem}"
        out.append({"role": role, "content": turn[text_key]})
    return _order_problem(out, schema) or out


def _order_problem(turns: list[dict], schema: str) -> str | None:
    body = turns[1:] if turns[0]["role"] == "system" else turns
    for i, turn in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if turn["role"] != expected:
            number = i + 1 + (len(turns) - len(body))
            return (f"{schema} turn {number}: expected {'a' if i % 2 == 0 else 'an'} "
                    f"{expected} turn, got {turn['role']}")
    if not body or body[-1]["role"] != "assistant":
        return f"{schema}: the conversation ends without an assistant turn"
    return None


def _text_problem(value: Any, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "is missing or empty" if required else None
    if not isinstance(value, str):
        return f"must be text, got {type(value).__name__}"
    if _SURROGATE.search(value):
        return "contains bytes that are not valid UTF-8"
    return None


def check_row(row: Any, number: int, schema: str, template_name: str,
              report: DataReport) -> Example | None:
    """One row read, validated and counted (the same in memory and streamed): its Example, or
    None with the reason added to ``report.bad_rows`` under its number."""
    report.total_rows += 1
    result = to_example(row, number, schema, template_name)
    if isinstance(result, str):
        report.bad_rows.append((number, result))
        return None
    return result


def bad_rows_error(source: str, report: DataReport, streamed: bool = False) -> DataError:
    """THE message for invalid rows (the same row-numbered lines in memory and streamed; a
    stream counts the rows read so far)."""
    of = f"{report.total_rows} read so far" if streamed else str(report.total_rows)
    return DataError(f"{source}: {len(report.bad_rows)} invalid row(s) of {of}:\n"
                     f"{report.bad_summary()}\nFix them, or pass --skip-bad-rows to drop them.")


def normalise(rows: list[Any], source: str, template_name: str, skip_bad_rows: bool,
              report: DataReport, schema: str | None = None,
              numbers: list[int] | None = None) -> list[Example]:
    """Validate and render rows (numbered by ``numbers``, default 1, 2, ...), drop exact
    duplicates; DataError on invalid rows unless skipped."""
    schema = schema or detect_schema(rows, source)
    examples: list[Example] = []
    seen: set[tuple] = set()
    for number, row in zip(numbers or range(1, len(rows) + 1), rows):
        result = check_row(row, getattr(row, "row", number), schema, template_name, report)
        if result is None:
            continue
        if result.key in seen:
            report.duplicates += 1
            continue
        seen.add(result.key)
        examples.append(result)
    if report.bad_rows and not examples:
        raise DataError(f"{source}: every row is invalid ({len(rows)} of {len(rows)}):\n"
                        f"{report.bad_summary()}\nCheck the file's format and columns.")
    if report.bad_rows and not skip_bad_rows:
        raise bad_rows_error(source, report)
    if report.bad_rows:
        log.warning("%s: skipped %d invalid row(s) of %d (--skip-bad-rows; every number is in "
                    "the data report):\n%s", source, len(report.bad_rows), len(rows),
                    report.bad_summary())
    return examples
