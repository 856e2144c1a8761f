"""Training data: rows (read by :mod:`a3duck.data_files`, in memory and streamed), their
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

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from a3duck.data_files import FILE_SUFFIXES as FILE_SUFFIXES  # re-exported: one reader
from a3duck.data_files import BadRow
from a3duck.data_files import load_numbered as load_numbered
from a3duck.data_files import load_rows as load_rows
from a3duck.data_files import read_rows as read_rows
from a3duck.errors import DataError
from a3duck.files import public_name
from a3duck.prompts import CHAT_NAME, get_template, user_text

log = logging.getLogger(__name__)

ANSWER_KEYS = ("output", "response", "completion")
PREFERENCE_KEYS = frozenset({"chosen", "rejected"})  # what makes a row a preference pair
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


# ----------------------------------------------------------------------------- schemas

def detect_schema(rows: Iterable[Any], source: str) -> str:
    """'prompt_completion', 'instruction', 'messages' or 'conversations'; DataError otherwise,
    and for rows of two schemas in one source (e.g. Alpaca rows among ``messages`` rows)."""
    keys: set[str] = set()
    first: dict[str, int] = {}  # schema -> position of its first row (1-based)
    count: dict[str, int] = {}
    for position, row in enumerate(rows, 1):
        if isinstance(row, dict):
            keys |= set(row)
            own = _schema_of(set(row))
            if own:
                first.setdefault(own, position)
                count[own] = count.get(own, 0) + 1
    if PREFERENCE_KEYS <= keys:  # chosen/rejected pairs (a3duck.preference)
        raise DataError(f"{source}: preference pairs (columns chosen/rejected) fit --method dpo, "
                        "not sft: pass --method dpo, or SFT rows (e.g. messages, "
                        "prompt/completion)")
    if len(first) > 1:
        kinds = "; ".join(f"{count[name]} {name} (first: row {first[name]})"
                          for name in sorted(first, key=first.get))
        raise DataError(f"{source}: rows of {len(first)} schemas in one source: {kinds}. Use "
                        "one schema per file, or list the files as sources of a mixture")
    if first:
        return next(iter(first))
    raise DataError(
        f"{source}: unrecognised schema (columns: {', '.join(sorted(keys)) or 'none'}). "
        "Expected instruction/input/output (Alpaca, Open-Platypus), instruction/input/response "
        "(GPTeacher), prompt/completion, messages (role/content) or conversations (ShareGPT "
        "from/value); a source's `columns` can map other names onto these."
    )


def _schema_of(keys: set[str]) -> str | None:
    """The schema one row's columns make, or None."""
    for name in CONVERSATION_SCHEMAS:
        if name in keys:
            return name
    if {"prompt", "completion"} <= keys:
        return "prompt_completion"
    if "instruction" in keys and keys & {"output", "response"}:
        return "instruction"
    return None


def is_conversational(schema: str) -> bool:
    return schema in CONVERSATION_SCHEMAS


def to_example(row: Any, number: int, schema: str, template_name: str) -> Example | str:
    """An Example, or the reason the row is invalid."""
    if isinstance(row, BadRow):
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
              report: DataReport, convert=None) -> Example | None:
    """One row read, validated and counted (the same in memory and streamed): its Example, or
    None with the reason added to ``report.bad_rows`` under its number."""
    report.total_rows += 1
    result = (convert or to_example)(row, number, schema, template_name)
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
              numbers: list[int] | None = None, convert=None) -> list[Example]:
    """Validate and render rows (numbered by ``numbers``, default 1, 2, ...), drop exact
    duplicates; DataError on invalid rows unless skipped. ``convert(row, number, schema,
    template_name)``: an item with a ``key`` or the reason the row is invalid (default
    :func:`to_example`; preference pairs: a3duck.preference)."""
    schema = schema or detect_schema(rows, source)
    examples: list[Example] = []
    seen: set[tuple] = set()
    for number, row in zip(numbers or range(1, len(rows) + 1), rows):
        result = check_row(row, getattr(row, "row", number), schema, template_name, report,
                           convert)
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
