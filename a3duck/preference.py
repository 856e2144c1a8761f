"""Preference pairs for ``method: dpo``: read, validate row by row, render and tokenise.

Accepted schemas (detected from the columns and the first row's values):
- ``text``: ``prompt``, ``chosen``, ``rejected`` strings, used verbatim (no template), as
  prompt/completion rows are for SFT;
- ``conversation``: ``chosen`` and ``rejected`` message lists (role/content) ending with the
  answer, with a shared ``prompt`` message list or without one (then both hold the whole
  conversation, which must be the same up to the last assistant turn);
- ``transcript``: HH-RLHF as it comes: ``chosen`` and ``rejected`` are two whole
  ``\\n\\nHuman: ... \\n\\nAssistant: ...`` texts; they are split into the shared conversation
  (everything before the last Assistant turn) and the two final answers.
Conversations are rendered with the run's template (a3duck.prompts) and tokenised piece by piece
exactly as SFT rows are (a3duck.dataset.encode), so an SFT adapter is preferred-tuned on the very
tokens it was trained on. Row numbering, bad rows, --skip-bad-rows and duplicates are
a3duck.data's (``normalise``); pairs over the cutoff are cut or dropped and counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from a3duck.data import (
    PREFERENCE_KEYS,
    BadRow,
    DataError,
    DataReport,
    Example,
    _text_problem,
    detect_schema,
    load_rows,
    normalise,
    to_messages,
)
from a3duck.dataset import Encoded, encode, nothing_fits_advice
from a3duck.prompts import get_template, resolve_template_name
from a3duck.sources import map_columns, mixture_order, parse_sources

TEXT, CONVERSATION, TRANSCRIPT = "text", "conversation", "transcript"
COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")  # what DPOTrainer's collator takes
# An HH-RLHF turn marker; the text before the first one must be empty.
_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}


@dataclass
class Pair:
    row: int  # 1-based row number in the source
    chosen: str
    rejected: str
    prompt: str = ""  # verbatim prompt text (schema text)
    messages: list[dict] | None = None  # the shared conversation, ending with a user turn

    @property
    def key(self) -> tuple:
        """What makes two rows exact duplicates."""
        before = self.prompt if self.messages is None else \
            tuple((m["role"], m["content"]) for m in self.messages)
        return (before, self.chosen, self.rejected)


# ----------------------------------------------------------------------------- schemas

def detect(rows: list[Any], source: str) -> str:
    """text, conversation or transcript; DataError naming the method that SFT rows fit."""
    keys: set[str] = set()
    first = None
    for row in rows:
        if isinstance(row, dict):
            keys |= set(row)
            first = first or row
    if not PREFERENCE_KEYS <= keys:
        try:
            schema = detect_schema(rows, source)
        except DataError:
            schema = None
        fits = (f"they are SFT rows ({schema}) and fit --method sft, not dpo"
                if schema else f"columns: {', '.join(sorted(keys)) or 'none'}")
        raise DataError(f"{source}: not preference pairs ({fits}). --method dpo needs chosen and "
                        "rejected columns (with prompt text, a prompt message list, or HH-RLHF "
                        "transcripts)")
    if isinstance(first.get("chosen"), list):
        return CONVERSATION
    return TEXT if "prompt" in keys else TRANSCRIPT


def to_pair(row: Any, number: int, schema: str, template_name: str = "") -> Pair | str:
    """A Pair, or the reason the row is invalid (``template_name``: for data.normalise)."""
    if isinstance(row, BadRow):
        return row.reason
    if not isinstance(row, dict):
        return f"expected an object, got {type(row).__name__}"
    pair = {TEXT: _text_pair, CONVERSATION: _conversation_pair,
            TRANSCRIPT: _transcript_pair}[schema](row, number)
    if isinstance(pair, Pair) and pair.chosen == pair.rejected:
        return "chosen and rejected are identical (nothing to prefer)"
    return pair


def _text_pair(row: dict, number: int) -> Pair | str:
    for name in ("prompt", "chosen", "rejected"):
        problem = _text_problem(row.get(name), required=True)
        if problem:
            return f"{name} {problem}"
    return Pair(number, row["chosen"], row["rejected"], prompt=row["prompt"])


def _conversation_pair(row: dict, number: int) -> Pair | str:
    prompt = row.get("prompt") or []
    if not isinstance(prompt, list):
        return f"prompt must be a list of turns, got {type(prompt).__name__}"
    turns = {}
    for name in ("chosen", "rejected"):
        answer = row.get(name)
        if not isinstance(answer, list) or not answer:
            return f"{name} must be a non-empty list of turns"
        whole = to_messages(prompt + answer, "messages")
        if isinstance(whole, str):
            return f"{name}: {whole.removeprefix('messages').lstrip(': ')}"
        turns[name] = whole
    if turns["chosen"][:-1] != turns["rejected"][:-1]:
        return "chosen and rejected differ before their last assistant turn (no shared prompt)"
    return Pair(number, turns["chosen"][-1]["content"], turns["rejected"][-1]["content"],
                messages=turns["chosen"][:-1])


def _transcript_pair(row: dict, number: int) -> Pair | str:
    parsed = {}
    for name in ("chosen", "rejected"):
        problem = _text_problem(row.get(name), required=True)
        if problem:
            return f"{name} {problem}"
        parsed[name] = split_transcript(row[name])
        if isinstance(parsed[name], str):
            return f"{name}: {parsed[name]}"
    (conv, chosen), (other, rejected) = parsed["chosen"], parsed["rejected"]
    if conv != other:
        return ("the chosen and rejected transcripts do not share a prefix (they differ before "
                "their last Assistant turn)")
    return Pair(number, chosen, rejected, messages=conv)


def split_transcript(text: str) -> tuple[list[dict], str] | str:
    """(conversation before the last Assistant turn, its final answer) of one HH-RLHF text,
    or the reason it is not a usable transcript."""
    parts = _TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        return "not a \\n\\nHuman: ... \\n\\nAssistant: ... transcript"
    turns = [{"role": _HH_ROLES[who], "content": said.strip()}
             for who, said in zip(parts[1::2], parts[2::2])]
    if turns[-1]["role"] != "assistant" or not turns[-1]["content"]:
        return "the final Assistant answer is missing or empty"
    checked = to_messages(turns, "messages")
    if isinstance(checked, str):
        return checked.replace("messages turn", "turn").replace("content ", "")
    return checked[:-1], checked[-1]["content"]


# ----------------------------------------------------------------------------- tokens

def encode_pair(pair: Pair, tokenizer, add_eos: bool, template) -> tuple[list, list, list]:
    """(prompt_ids, chosen_ids, rejected_ids): each answer is tokenised as SFT's last assistant
    turn (its end-of-turn token included), the prompt as everything before it."""
    out = []
    for answer in (pair.chosen, pair.rejected):
        messages = None if pair.messages is None else \
            [*pair.messages, {"role": "assistant", "content": answer}]
        enc = encode(Example(pair.prompt, answer, pair.row, messages), tokenizer, add_eos,
                     template)
        start, end = _last_answer(enc)
        out.append((enc.ids[:start], enc.ids[start:end]))
    if out[0][0] != out[1][0]:  # pieces are tokenised separately: cannot differ
        raise DataError(f"row {pair.row}: chosen and rejected prompts tokenise differently")
    return out[0][0], out[0][1], out[1][1]


def _last_answer(enc: Encoded) -> tuple[int, int]:
    """(start, end) token positions of the last labelled turn."""
    end = enc.turn_ends[-1]
    start = end
    while start > 0 and enc.mask[start - 1]:
        start -= 1
    return start, end


def fit_pair(ids: tuple[list, list, list], config, report: DataReport):
    """The pair within max_prompt_len / max_completion_len / cutoff_len (the prompt keeps its
    end, the answers their start), or None when dropped (too_long: drop, nothing left)."""
    prompt, chosen, rejected = ids
    longest = max(len(chosen), len(rejected))
    over = ((config.max_prompt_len and len(prompt) > config.max_prompt_len)
            or (config.max_completion_len and longest > config.max_completion_len)
            or len(prompt) + longest > config.cutoff_len)
    if not over:
        return ids
    report.too_long += 1
    if config.max_prompt_len:
        prompt = prompt[-config.max_prompt_len:]
    room = config.cutoff_len - len(prompt)
    if config.max_completion_len:
        room = min(room, config.max_completion_len)
    chosen, rejected = chosen[:max(room, 0)], rejected[:max(room, 0)]
    if config.too_long == "drop" or room <= 0 or chosen == rejected:
        report.dropped_too_long += 1
        return None
    report.truncated += 1
    return prompt, chosen, rejected


def prepare(config, tokenizer):
    """Read, validate, mix and tokenise ``config.data`` as preference pairs.

    Returns (datasets.Dataset with COLUMNS, DataReport, resolved template name)."""
    import datasets

    read = []
    for source in parse_sources(config.data, config.data_split):
        rows = [map_columns(r, source.columns) for r in load_rows(source.path, source.split)]
        if not rows:
            raise DataError(f"{source.label}: the dataset is empty")
        read.append((source, rows, detect(rows, source.label),
                     DataReport(source.label, public=source.public_label)))
    conversational = any(schema != TEXT for _, _, schema, _ in read)
    name = resolve_template_name(config.prompt_template, conversational, tokenizer)
    template = get_template(name, tokenizer)
    per_source = [normalise(rows, src.label, name, config.skip_bad_rows, rep, schema,
                            convert=to_pair)
                  for src, rows, schema, rep in read]
    sources = [src for src, *_ in read]
    total = DataReport(", ".join(s.label for s in sources),
                       public=", ".join(s.public_label for s in sources))
    for *_, rep in read:
        total.total_rows += rep.total_rows
        total.bad_rows += rep.bad_rows
        total.duplicates += rep.duplicates
    columns: dict[str, list] = {c: [] for c in COLUMNS}
    for s, r in mixture_order([len(p) for p in per_source], sources, config.seed):
        fitted = fit_pair(encode_pair(per_source[s][r], tokenizer, config.add_eos_token,
                                      template), config, total)
        for column, ids in zip(COLUMNS, fitted or ()):
            columns[column].append(ids)
    total.kept = len(columns["prompt_ids"])
    if not total.kept:
        raise DataError(f"{total.source}: no trainable pairs left ({total.too_long} over the "
                        f"cutoff of {config.cutoff_len} tokens, dropped): "
                        f"{nothing_fits_advice(config.too_long)}")
    return datasets.Dataset.from_dict(columns), total, name
