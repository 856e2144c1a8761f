"""`a3duck check-contamination`: training rows that duplicate benchmark questions.

Platypus removed training questions too similar to benchmark test questions (embedding cosine
similarity >= 0.8). a3duck does the same job without an embedding model:

* text is normalised (Unicode NFKC, lower case, every run of non-alphanumerics -> one space);
* a benchmark item is its question, plus its answer options for MMLU and ARC (the item as the
  model sees it); when an MMLU/ARC question alone has >= 10 words it is also checked on its own;
* a training row is its prompt side as data.py parses it (``Example.question``: instruction +
  input, ``prompt``, or the user turns of a conversation), never the answer;
* **exact duplicate**: the normalised item equals the normalised training prompt, or (items of
  >= 6 words) appears in it verbatim;
* **near duplicate**: at least ``threshold`` (default 0.8) of the item's character 5-gram
  shingles occur in the training prompt ("containment"; robust to small edits and to questions
  wrapped in extra instructions). Items under 6 words are only matched exactly.

Candidates for the near test are training rows sharing one of the item's three least frequent
words; an item whose words absent from all training rows already cover more than
``1 - threshold`` of its characters cannot reach the threshold and is not compared further.

Benchmarks come from ``--data-dir``, read by the reader of ``a3duck eval --data-dir``
(:func:`a3duck.evaluation.benchmarks.question_docs`): MMLU ``mmlu/{test,val}/*.csv``, ARC
``arc/ARC-Challenge-{Test,Dev}.jsonl``, HellaSwag ``hellaswag/*.jsonl`` (files without
``train`` in the name), TruthfulQA ``truthfulqa/*.json``; report keys are the leaderboard task
names. A benchmark absent from the folder is reported as missing; a malformed file raises the
reader's error naming the file and line. The JSON report names files, never
local paths (it goes into the model card).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from a3duck import data
from a3duck.errors import A3DuckError
from a3duck.evaluation.benchmarks import LAYOUT, question_docs
from a3duck.evaluation.leaderboard import LEADERBOARD_TASKS
from a3duck.files import atomic_write_text
from a3duck.prompts import ALPACA_NAME

DEFAULT_THRESHOLD = 0.8
SHINGLE = 5           # characters per shingle
MIN_WORDS = 6         # shorter items are only matched exactly
STEM_WORDS = 10       # MMLU/ARC questions this long are also checked without their options
RARE_WORDS = 3        # candidate rows share one of the item's this many least frequent words
EXAMPLES = 5          # examples per benchmark in the report
METHOD = ("normalised text; exact = equal or verbatim contained; near = character "
          f"{SHINGLE}-gram containment of the benchmark item in the training prompt")
_NON_ALNUM = re.compile(r"[\W_]+")


class ContaminationError(A3DuckError):
    """Inputs the contamination check cannot use; the message says what to fix."""


@dataclass
class Item:
    benchmark: str
    text: str          # as shown in examples
    views: list[str]   # normalised texts compared with training rows


@dataclass
class Match:
    row: int           # 0-based index into the training rows
    item: Item
    kind: str          # "exact" | "near"
    similarity: float


def normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", str(text)).lower()
    return _NON_ALNUM.sub(" ", text).strip()


def shingles(norm: str) -> set[str]:
    if len(norm) <= SHINGLE:
        return {norm} if norm else set()
    return {norm[i:i + SHINGLE] for i in range(len(norm) - SHINGLE + 1)}


# ----------------------------------------------------------------------------- benchmarks

def _item(benchmark: str, question: str, options: list[str] | None = None) -> Item:
    full = " ".join([question, *(options or [])])
    views = [normalise_text(full)]
    stem = normalise_text(question)
    if options and len(stem.split()) >= STEM_WORDS:
        views.append(stem)
    return Item(benchmark, full, views)


def load_benchmarks(data_dir: Path) -> dict[str, tuple[list[Item], list[str]]]:
    """task -> (items, file names) for every leaderboard task, read by the ``--data-dir``
    reader (evaluation/benchmarks.py); absent benchmarks map to ([], [])."""
    if not data_dir.is_dir():
        raise ContaminationError(f"benchmark folder not found: {data_dir} (--data-dir)")
    found = {}
    for name, spec in LEADERBOARD_TASKS.items():
        docs, files = question_docs(data_dir, name)
        found[name] = ([_item(name, *spec.question(d)) for d in docs], files)
    if not any(items for items, _ in found.values()):
        raise ContaminationError(
            f"{data_dir}: no benchmark files found; expected some of {LAYOUT}")
    return found


# ----------------------------------------------------------------------------- training rows

def load_training(spec: str) -> tuple[list, list[str | None]]:
    """(raw rows, normalised prompt text per row; None for invalid rows)."""
    numbered = data.load_numbered(spec)
    if not numbered:
        raise ContaminationError(f"{spec}: the dataset is empty")
    rows = [row for _, row in numbered]
    schema = data.detect_schema(rows, spec)
    texts: list[str | None] = []
    for number, row in numbered:  # the parsed rows of every schema data.py accepts
        example = data.to_example(row, number, schema, ALPACA_NAME)
        texts.append(None if isinstance(example, str) else normalise_text(example.question))
    return rows, texts


class TrainingIndex:
    """Word posting lists over the training prompts, and lazily built shingle sets."""

    def __init__(self, texts: list[str | None]):
        self.texts = texts
        self.exact = {t: i for i, t in reversed(list(enumerate(texts))) if t}
        self.postings: dict[str, list[int]] = defaultdict(list)
        for i, text in enumerate(texts):
            for word in set(text.split()) if text else ():
                self.postings[word].append(i)
        self._shingles: dict[int, set[str]] = {}

    def shingles_of(self, row: int) -> set[str]:
        if row not in self._shingles:
            self._shingles[row] = shingles(self.texts[row])
        return self._shingles[row]

    def candidates(self, view: str, threshold: float) -> set[int]:
        words = set(view.split())
        absent = sum(len(w) + 1 for w in words if w not in self.postings)
        if absent > (1 - threshold) * (len(view) + 1):
            return set()  # too much of the item is in no training row at all
        present = sorted((w for w in words if w in self.postings),
                         key=lambda w: len(self.postings[w]))
        return {i for w in present[:RARE_WORDS] for i in self.postings[w]}


def match_item(item: Item, index: TrainingIndex, threshold: float) -> list[Match]:
    """Every training row that duplicates ``item`` (best view per row)."""
    best: dict[int, Match] = {}
    for view in item.views:
        if view in index.exact:
            row = index.exact[view]
            best[row] = Match(row, item, "exact", 1.0)
        if len(view.split()) < MIN_WORDS:
            continue
        grams = shingles(view)
        for row in index.candidates(view, threshold):
            if row in best and best[row].kind == "exact":
                continue
            if view in index.texts[row]:
                best[row] = Match(row, item, "exact", 1.0)
                continue
            sim = len(grams & index.shingles_of(row)) / len(grams)
            if sim >= threshold and sim > getattr(best.get(row), "similarity", -1):
                best[row] = Match(row, item, "near", round(sim, 4))
    return list(best.values())


# ----------------------------------------------------------------------------- report

def check(spec: str, data_dir: Path, threshold: float = DEFAULT_THRESHOLD):
    """Run the check. Returns (report dict, raw training rows, normalised training prompts
    (None = invalid row), set of flagged row indices)."""
    if not 0 < threshold <= 1:
        raise ContaminationError(f"--threshold must be in (0, 1], got {threshold}")
    benchmarks = load_benchmarks(Path(data_dir))
    rows, texts = load_training(spec)
    index = TrainingIndex(texts)
    report = {
        "data": Path(spec).name, "method": METHOD, "threshold": threshold,
        "shingle_chars": SHINGLE, "training_rows": len(rows),
        "invalid_training_rows": sum(t is None for t in texts), "benchmarks": {},
    }
    flagged: set[int] = set()
    for name, (items, files) in benchmarks.items():
        matches = [m for item in items for m in match_item(item, index, threshold)]
        report["benchmarks"][name] = _summary(items, files, matches, texts)
        flagged |= {m.row for m in matches}
    report["flagged_training_rows"] = len(flagged)
    report["clean_training_rows"] = len(rows) - len(flagged) - report["invalid_training_rows"]
    return report, rows, texts, flagged


def _summary(items, files, matches: list[Match], texts) -> dict:
    if not items:
        return {"status": "missing", "files": [], "questions": 0}
    per_row: dict[int, Match] = {}
    for m in matches:  # a row counts once per benchmark, as its strongest match
        if m.row not in per_row or _strength(m) > _strength(per_row[m.row]):
            per_row[m.row] = m
    ranked = sorted(per_row.values(), key=lambda m: (m.kind != "exact", -m.similarity, m.row))
    return {
        "status": "checked", "files": files, "questions": len(items),
        "exact_duplicates": sum(m.kind == "exact" for m in ranked),
        "near_duplicates": sum(m.kind == "near" for m in ranked),
        "contaminated_questions": len({id(m.item) for m in matches}),
        "examples": [{"kind": m.kind, "similarity": m.similarity, "training_row": m.row + 1,
                      "benchmark_text": _clip(m.item.text), "training_text": _clip(texts[m.row])}
                     for m in ranked[:EXAMPLES]],
    }


def _strength(m: Match) -> tuple[bool, float]:
    return m.kind == "exact", m.similarity


def _clip(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def write_filtered(rows: list, flagged: set[int], texts, path: Path) -> int:
    """Write the valid, unflagged rows as .jsonl or .json (array); returns how many."""
    keep = [r for i, r in enumerate(rows) if i not in flagged and texts[i] is not None]
    if path.suffix == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep)
    elif path.suffix == ".json":
        text = json.dumps(keep, ensure_ascii=False, indent=1) + "\n"
    else:
        raise ContaminationError(f"--write-filtered {path}: use a .jsonl or .json file name")
    atomic_write_text(path, text)
    return len(keep)


def format_table(report: dict) -> str:
    lines = [f"{'benchmark':<16}{'questions':>10}{'exact':>7}{'near':>6}  files",
             "-" * 54]
    for name, b in report["benchmarks"].items():
        if b["status"] == "missing":
            lines.append(f"{name:<16}{'missing':>10}")
            continue
        lines.append(f"{name:<16}{b['questions']:>10}{b['exact_duplicates']:>7}"
                     f"{b['near_duplicates']:>6}  {', '.join(b['files'][:3])}"
                     + (" ..." if len(b["files"]) > 3 else ""))
    lines.append(f"{report['flagged_training_rows']} of {report['training_rows']} training rows "
                 f"flagged (threshold {report['threshold']}, {report['method']})")
    return "\n".join(lines)
