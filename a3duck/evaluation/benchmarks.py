"""Read the leaderboard benchmarks from their original distribution files (``--data-dir``).

Layout (that of ``../shared/data``)::

    mmlu/{dev,val,test}/<subject>_{dev,val,test}.csv   hendrycks CSVs; eval test/ else val/; shots dev/
    arc/ARC-Challenge-{Train,Dev,Test}.jsonl           AI2 jsonl; eval Test else Dev; shots Train
    hellaswag/*.jsonl                                  rowanz jsonl; shots from *train* files, else
                                                       the last HELLASWAG_POOL eval rows (excluded)
    truthfulqa/*.json                                  TruthfulQA mc_task.json (mc1/mc2 targets)

Each reader converts rows to the Hub dataset format that lm-eval's own task consumes (cais/mmlu,
allenai/ai2_arc, Rowan/hellaswag, truthfulqa/truthful_qa multiple_choice), so lm-eval's
process_docs and templates apply unchanged. A malformed row raises BenchmarkDataError naming the
file and line; nothing here touches a model.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from a3duck.errors import A3DuckError
from a3duck.evaluation.leaderboard import (
    ARC,
    HELLASWAG,
    LEADERBOARD_TASKS,
    MMLU,
    TRUTHFULQA,
    LocalTask,
    mmlu_subjects,
    write_rows,
)

HELLASWAG_POOL = 100  # few-shot pool when no train file: the LAST rows of the eval files
LAYOUT = ("mmlu/{dev,val,test}/*.csv, arc/ARC-Challenge-*.jsonl, hellaswag/*.jsonl, "
          "truthfulqa/*.json")  # for messages and help; the module docstring has the details


class BenchmarkDataError(A3DuckError):
    """A benchmark file that is missing, partial or malformed; the message names it."""


@dataclass
class Prepared:
    """Local tasks ready for lm-eval, and the requested benchmarks that are absent (with why)."""

    tasks: dict[str, list[LocalTask]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _bad(path: Path, line: int | None, problem: str) -> BenchmarkDataError:
    where = f"{path}:{line}" if line is not None else str(path)
    return BenchmarkDataError(f"malformed benchmark file {where}: {problem}")


def _jsonl(path: Path):
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise _bad(path, n, f"not JSON ({exc.msg})") from None


def read_arc(path: Path) -> list[dict]:
    """AI2 ARC jsonl -> allenai/ai2_arc rows {id, question, choices{text,label}, answerKey}."""
    rows = []
    for n, raw in _jsonl(path):
        try:
            q = raw["question"]
            choices = {"text": [c["text"] for c in q["choices"]],
                       "label": [c["label"] for c in q["choices"]]}
            row = {"id": raw["id"], "question": q["stem"], "choices": choices,
                   "answerKey": raw["answerKey"]}
        except (KeyError, TypeError) as exc:
            raise _bad(path, n, f"missing field {exc}; expected AI2 ARC jsonl") from None
        if row["answerKey"] not in choices["label"]:
            raise _bad(path, n, f"answerKey {row['answerKey']!r} is not a choice label")
        rows.append(row)
    return rows


def read_hellaswag(path: Path) -> list[dict]:
    """rowanz HellaSwag jsonl -> Rowan/hellaswag rows (label as a string, as on the Hub)."""
    keys = ("ind", "activity_label", "ctx_a", "ctx_b", "ctx", "endings", "source_id", "split",
            "split_type")
    rows = []
    for n, raw in _jsonl(path):
        missing = [k for k in ("activity_label", "ctx_a", "ctx_b", "endings", "label")
                   if k not in raw]
        if missing:
            raise _bad(path, n, f"missing {', '.join(missing)} (test files have no labels)")
        if not isinstance(raw["endings"], list) or not 0 <= int(raw["label"]) < len(raw["endings"]):
            raise _bad(path, n, "endings must be a list and label an index into it")
        row = {k: raw.get(k) for k in keys}
        row["label"] = str(int(raw["label"]))
        rows.append(row)
    return rows


def read_mmlu(path: Path, subject: str) -> list[dict]:
    """hendrycks CSV (question, A, B, C, D, answer letter) -> cais/mmlu rows."""
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        for n, rec in enumerate(csv.reader(fh), 1):
            if len(rec) != 6 or rec[5].strip() not in ("A", "B", "C", "D"):
                raise _bad(path, n, "expected 6 columns: question, A, B, C, D, answer (A-D)")
            rows.append({"question": rec[0], "subject": subject, "choices": rec[1:5],
                         "answer": "ABCD".index(rec[5].strip())})
    return rows


def read_truthfulqa(path: Path) -> list[dict]:
    """mc_task.json -> truthful_qa multiple_choice rows (answer order as in the file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise _bad(path, exc.lineno, f"not JSON ({exc.msg})") from None
    if not isinstance(data, list):
        raise _bad(path, None, "expected a JSON list of questions (mc_task.json format)")
    rows = []
    for i, q in enumerate(data):
        try:
            row = {"question": q["question"]}
            for key in ("mc1_targets", "mc2_targets"):
                row[key] = {"choices": list(q[key]), "labels": [int(v) for v in q[key].values()]}
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise _bad(path, None, f"question #{i}: {exc!r}; expected question, "
                                   "mc1_targets and mc2_targets {answer: 0|1}") from None
        rows.append(row)
    return rows


def _need_rows(path: Path, rows: list, n: int, why: str) -> list:
    if len(rows) < n:
        raise BenchmarkDataError(f"{path} has {len(rows)} rows; {why} needs at least {n}")
    return rows


# ----------------------------------------------------------------------------- the layout

def _arc_files(root: Path) -> tuple[Path, list[Path]]:
    """(few-shot file, eval files present in preference order: Test, then Dev)."""
    folder = root / ARC.data_folder
    evals = [folder / f"ARC-Challenge-{s}.jsonl" for s in ("Test", "Dev")]
    return folder / "ARC-Challenge-Train.jsonl", [f for f in evals if f.is_file()]


def _hellaswag_files(root: Path) -> tuple[list[Path], list[Path]]:
    """(train files, eval files): a file is a train file when its name says so."""
    files = sorted((root / HELLASWAG.data_folder).glob("*.jsonl"))
    train = [f for f in files if "train" in f.name.lower()]
    return train, [f for f in files if f not in train]


def _mmlu_files(root: Path, split: str) -> list[Path]:
    return sorted((root / MMLU.data_folder / split).glob(f"*_{split}.csv"))


def _truthfulqa_files(root: Path) -> list[Path]:
    return sorted((root / TRUTHFULQA.data_folder).glob("*.json"))


def question_docs(root: Path, task: str) -> tuple[list[dict], list[str]]:
    """Every benchmark question of ``task`` under ``root`` that an evaluation may score (all of
    MMLU test/ and val/, ARC Test and Dev, HellaSwag's non-train files, TruthfulQA), as Hub
    format docs, and the names of the files read; ([], []) when the task is absent."""
    if task == ARC.name:
        files = _arc_files(root)[1]
        return [d for f in files for d in read_arc(f)], [f.name for f in files]
    if task == HELLASWAG.name:
        files = _hellaswag_files(root)[1]
        return [d for f in files for d in read_hellaswag(f)], [f.name for f in files]
    if task == MMLU.name:
        files = _mmlu_files(root, "test") + _mmlu_files(root, "val")
        return ([d for f in files for d in read_mmlu(f, f.stem.rsplit("_", 1)[0])],
                [f.name for f in files])
    if task == TRUTHFULQA.name:
        files = _truthfulqa_files(root)
        return [d for f in files for d in read_truthfulqa(f)], [f.name for f in files]
    return [], []


@dataclass
class Split:
    """One benchmark's evaluated docs and its few-shot pool, as read from ``--data-dir``."""

    docs: list[dict]
    pool: list[dict]
    split: str  # the lm-eval split the docs stand for: "test" or "validation"
    pool_file: Path  # named in errors about the pool
    notes: list[str] = field(default_factory=list)


def arc_split(root: Path) -> Split | None:
    """ARC-Challenge: Test (else Dev) evaluated, the shots from Train; None when absent."""
    train, evals = _arc_files(root)
    if not evals:
        return None
    if not train.is_file():
        shots = ARC.num_fewshot
        raise BenchmarkDataError(f"{train} is missing: ARC's {shots} few-shot examples come from it")
    evalf = evals[0]
    split = "test" if evalf.name.endswith("Test.jsonl") else "validation"
    notes = [] if split == "test" else [
        f"arc_challenge: ARC-Challenge-Test.jsonl absent; evaluating {evalf.name}"]
    return Split(_need_rows(evalf, read_arc(evalf), 1, "ARC"), read_arc(train), split, train,
                 notes)


def hellaswag_split(root: Path) -> Split | None:
    """HellaSwag validation rows; shots from train files, else the last HELLASWAG_POOL eval
    rows (then excluded from evaluation). None when there is no eval file."""
    train_files, eval_files = _hellaswag_files(root)
    if not eval_files:
        return None
    rows = [r for f in eval_files for r in read_hellaswag(f)]
    if train_files:
        pool = [r for f in train_files for r in read_hellaswag(f)]
        return Split(rows, pool, "validation", train_files[0])
    # documented fallback: a fixed slice of the eval rows, removed from evaluation
    _need_rows(eval_files[-1], rows, HELLASWAG_POOL + 1, "the few-shot fallback pool")
    rows, pool = rows[:-HELLASWAG_POOL], rows[-HELLASWAG_POOL:]
    note = (f"hellaswag: no train file; few-shot pool = the last {HELLASWAG_POOL} eval rows, "
            f"excluded from evaluation ({len(rows)} rows evaluated)")
    return Split(rows, pool, "validation", eval_files[0], [note])


# ----------------------------------------------------------------------------- lm-eval tasks

def _arc(root: Path, work: Path, prep: Prepared) -> list[LocalTask]:
    split = arc_split(root)
    if split is None:
        prep.missing[ARC.name] = ("no ARC-Challenge-Test.jsonl or ARC-Challenge-Dev.jsonl "
                                  f"in {root / ARC.data_folder}")
        return []
    prep.notes += split.notes
    name = split.split
    task = LocalTask(ARC.name, {
        "train": write_rows(work / "arc_train.jsonl",
                            _need_shots(ARC.name, split.pool_file, split.pool)),
        name: write_rows(work / f"arc_{name}.jsonl", split.docs),
    }, splits={"training_split": "train",
               "validation_split": "validation" if name == "validation" else None,
               "test_split": "test" if name == "test" else None}, n_eval=len(split.docs))
    return [task]


def _hellaswag(root: Path, work: Path, prep: Prepared) -> list[LocalTask]:
    split = hellaswag_split(root)
    if split is None:
        folder = root / HELLASWAG.data_folder
        prep.missing[HELLASWAG.name] = f"no labelled *.jsonl eval file in {folder}"
        return []
    prep.notes += split.notes
    task = LocalTask(HELLASWAG.name, {
        "train": write_rows(work / "hellaswag_train.jsonl",
                            _need_shots(HELLASWAG.name, split.pool_file, split.pool)),
        "validation": write_rows(work / "hellaswag_validation.jsonl", split.docs),
    }, splits={"training_split": "train", "validation_split": "validation"},
        n_eval=len(split.docs))
    return [task]


def _truthfulqa(root: Path, work: Path, prep: Prepared) -> list[LocalTask]:
    files = _truthfulqa_files(root)
    if not files:
        folder = root / TRUTHFULQA.data_folder
        prep.missing[TRUTHFULQA.name] = f"no mc_task *.json file in {folder}"
        return []
    rows = [r for f in files for r in read_truthfulqa(f)]
    _need_rows(files[0], rows, 1, "TruthfulQA")
    data = write_rows(work / "truthfulqa_validation.jsonl", rows)
    return [LocalTask(TRUTHFULQA.name, {"validation": data},
                      splits={"validation_split": "validation"}, n_eval=len(rows))]


def _need_shots(task: str, path: Path, pool: list[dict]) -> list[dict]:
    """The few-shot pool, with at least the task's shots (its declaration says how many)."""
    spec = LEADERBOARD_TASKS[task]
    return _need_rows(path, pool, spec.num_fewshot, f"{spec.num_fewshot}-shot {spec.title}")


def _mmlu_subject(root: Path, work: Path, subject: str) -> LocalTask | None:
    dev = root / MMLU.data_folder / "dev" / f"{subject}_dev.csv"
    test, val = (root / MMLU.data_folder / s / f"{subject}_{s}.csv" for s in ("test", "val"))
    evalf = test if test.is_file() else val
    if not dev.is_file() and not evalf.is_file():
        return None
    if not dev.is_file() or not evalf.is_file():
        raise BenchmarkDataError(
            f"MMLU subject {subject!r} is partial: needs {dev} "
            f"({MMLU.num_fewshot} shots) and {test} or {val}")
    split = "test" if evalf is test else "validation"
    rows = _need_rows(evalf, read_mmlu(evalf, subject), 1, "MMLU")
    return LocalTask(MMLU.name, {
        "dev": write_rows(work / f"mmlu_{subject}_dev.jsonl",
                          _need_shots(MMLU.name, dev, read_mmlu(dev, subject))),
        split: write_rows(work / f"mmlu_{subject}_{split}.jsonl", rows),
    }, subject=subject, splits={"test_split": "test" if split == "test" else None,
                                "validation_split": "validation" if split != "test" else None},
        n_eval=len(rows))


def _mmlu(root: Path, work: Path, prep: Prepared) -> list[LocalTask]:
    subjects = mmlu_subjects()
    tasks = [t for s in subjects if (t := _mmlu_subject(root, work, s)) is not None]
    if not tasks:
        folder = root / MMLU.data_folder
        prep.missing[MMLU.name] = f"no <subject>_dev.csv + _test/_val.csv files under {folder}"
    elif len(tasks) < len(subjects):
        prep.notes.append(f"mmlu: only {len(tasks)} of {len(subjects)} subjects present; the "
                          "mean covers those (marked limited)")
    if tasks and tasks[0].splits["test_split"] is None:
        prep.notes.append("mmlu: no test/ files; evaluating val/")
    return tasks


_READERS = {ARC.name: _arc, HELLASWAG.name: _hellaswag, MMLU.name: _mmlu,
            TRUTHFULQA.name: _truthfulqa}


def prepare(data_dir: Path, benches: list[str], work: Path) -> Prepared:
    """Validate and convert the requested benchmarks under ``data_dir`` into ``work``.

    Raises BenchmarkDataError for a missing folder, a partial or malformed benchmark, or when
    none of the requested benchmarks is present; absent ones are listed in ``missing``.
    """
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise BenchmarkDataError(f"--data-dir {data_dir} is not a folder")
    prep = Prepared()
    for bench in benches:
        if bench not in LEADERBOARD_TASKS:
            raise BenchmarkDataError(f"unknown task {bench!r}")
        reader = _READERS.get(bench)
        if reader is None:  # a task added to the table without a reader of its files here
            prep.missing[bench] = "no --data-dir reader for this task (evaluate it from the Hub)"
            continue
        tasks = reader(data_dir, work / "data", prep)
        if tasks:
            prep.tasks[bench] = tasks
    if not prep.tasks:
        raise BenchmarkDataError(
            f"none of {', '.join(benches)} found in {data_dir}: expected the layout "
            f"{LAYOUT} (see docs/evaluation.md)")
    return prep
