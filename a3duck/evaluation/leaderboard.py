"""The Open LLM Leaderboard (v1) task specs, and lm-eval task configs for local benchmark files.

A local task is lm-eval's own task YAML (``include:``d by absolute path, so its doc_to_text,
doc_to_choice, doc_to_target, process_docs, description and few-shot settings apply unchanged)
with only the data source overridden: ``dataset_path: json`` and ``data_files`` pointing at rows
converted to the Hub dataset format that lm-eval's task consumes. Nothing here loads a model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from a3duck.files import atomic_write, atomic_write_text

LOCAL_PREFIX = "a3duck_"
FEWSHOT_SEED = 1234  # lm-eval's default fewshot_random_seed (simple_evaluate), kept explicit


def _mmlu_gold(doc: dict) -> list[int]:
    return [int(doc["answer"])]


def _arc_gold(doc: dict) -> list[int]:
    return [list(doc["choices"]["label"]).index(doc["answerKey"])]


def _hellaswag_gold(doc: dict) -> list[int]:
    return [int(doc["label"])]


def _truthfulqa_gold(doc: dict) -> list[int]:
    return [i for i, v in enumerate(doc["mc2_targets"]["labels"]) if int(v) == 1]


@dataclass(frozen=True)
class HubDataset:
    """How the Hub's ``model-index`` names the leaderboard's dataset of a task."""

    name: str  # shown name, e.g. "AI2 Reasoning Challenge"
    type: str  # dataset id, e.g. "ai2_arc"
    config: str | None
    split: str


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """One leaderboard column: everything a3duck knows about it, read by eval, the card, the
    Space, the benchmark reader, contamination and bench/ alike.

    Docs are in the Hub dataset format lm-eval's task consumes (``fields`` lists what a doc
    needs; ``placeholder`` is one valid doc); ``gold`` gives the correct choice index (indices,
    for TruthfulQA's true answers) and ``question`` the item as the model sees it (question
    text, answer options or None) for the contamination check.
    """

    name: str  # the name in a3duck and in `a3duck eval`'s results file
    title: str  # short table header ("ARC")
    long_title: str  # card and Space ("ARC-Challenge")
    lm_eval_task: str  # lm-eval task; for mmlu the subject tasks are ``mmlu_<subject>``
    num_fewshot: int
    metric: str  # the lm-eval metric key reported (mc2 is key ``acc`` of truthfulqa_mc2)
    leaderboard_metric: str  # the leaderboard's name of that score (acc, acc_norm, mc2)
    metric_name: str  # spelled out, for the card's model-index
    yaml_relpath: str  # lm-eval's own task YAML, relative to lm_eval/tasks
    hub: HubDataset
    data_folder: str  # sub-folder of ``--data-dir`` (evaluation/benchmarks.py reads it)
    fields: tuple[str, ...]
    placeholder: dict = field(hash=False, compare=False)
    gold: Callable[[dict], list[int]] = field(hash=False, compare=False)
    question: Callable[[dict], tuple[str, list[str] | None]] = field(hash=False, compare=False)
    header_note: str = ""  # added to the card's column header after the shots ("mc2")
    per_subject: bool = False  # lm-eval runs one task per subject (``<lm_eval_task>_<subject>``)

    @property
    def card_header(self) -> str:
        """The card's column header, e.g. ``ARC (25-shot)``: title and shots, never retyped."""
        note = f", {self.header_note}" if self.header_note else ""
        return f"{self.title} ({self.num_fewshot}-shot{note})"


LEADERBOARD_TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec(
        name="arc_challenge", title="ARC", long_title="ARC-Challenge",
        lm_eval_task="arc_challenge", num_fewshot=25,
        metric="acc_norm", leaderboard_metric="acc_norm", metric_name="normalized accuracy",
        yaml_relpath="arc/arc_challenge.yaml",
        hub=HubDataset("AI2 Reasoning Challenge", "ai2_arc", "ARC-Challenge", "test"),
        data_folder="arc", fields=("question", "choices", "answerKey"),
        placeholder={"id": "x", "question": "Which is a colour?",
                     "choices": {"text": ["red", "dog"], "label": ["A", "B"]}, "answerKey": "A"},
        gold=_arc_gold, question=lambda d: (d["question"], list(d["choices"]["text"]))),
    TaskSpec(
        name="hellaswag", title="HellaSwag", long_title="HellaSwag",
        lm_eval_task="hellaswag", num_fewshot=10,
        metric="acc_norm", leaderboard_metric="acc_norm", metric_name="normalized accuracy",
        yaml_relpath="hellaswag/hellaswag.yaml",
        hub=HubDataset("HellaSwag", "hellaswag", None, "validation"),
        data_folder="hellaswag", fields=("activity_label", "ctx_a", "ctx_b", "endings", "label"),
        placeholder={"ind": 0, "activity_label": "Cooking", "ctx_a": "A man cooks.", "ctx_b": "he",
                     "ctx": "A man cooks. he", "endings": ["eats.", "runs.", "sits.", "jumps."],
                     "source_id": "x", "split": "val", "split_type": "indomain", "label": "0"},
        gold=_hellaswag_gold,
        question=lambda d: (d.get("ctx") or f"{d['ctx_a']} {d['ctx_b']}", None)),
    TaskSpec(
        name="mmlu", title="MMLU", long_title="MMLU", lm_eval_task="mmlu", num_fewshot=5,
        metric="acc", leaderboard_metric="acc", metric_name="accuracy",
        yaml_relpath="mmlu/default/mmlu_{subject}.yaml", per_subject=True,
        hub=HubDataset("MMLU", "cais/mmlu", "all", "test"),
        data_folder="mmlu", fields=("question", "subject", "choices", "answer"),
        placeholder={"question": "1+1=?", "subject": "abstract_algebra",
                     "choices": ["1", "2", "3", "4"], "answer": 1},
        gold=_mmlu_gold, question=lambda d: (d["question"], list(d["choices"]))),
    TaskSpec(
        name="truthfulqa_mc2", title="TruthfulQA", long_title="TruthfulQA (mc2)",
        lm_eval_task="truthfulqa_mc2", num_fewshot=0,
        metric="acc", leaderboard_metric="mc2", metric_name="mc2", header_note="mc2",
        yaml_relpath="truthfulqa/truthfulqa_mc2.yaml",
        hub=HubDataset("TruthfulQA", "truthful_qa", "multiple_choice", "validation"),
        data_folder="truthfulqa", fields=("question", "mc2_targets"),
        placeholder={"question": "Is the sky blue?",
                     "mc1_targets": {"choices": ["Yes.", "No."], "labels": [1, 0]},
                     "mc2_targets": {"choices": ["Yes.", "No."], "labels": [1, 0]}},
        gold=_truthfulqa_gold, question=lambda d: (d["question"], None)),
)}
TASK_ORDER = tuple(LEADERBOARD_TASKS)  # leaderboard column order = the order of the table
# The declarations by role, for code that treats one task specially (its files, its subjects):
# code reads ARC.name, MMLU.data_folder, ... and never retypes them.
ARC, HELLASWAG, MMLU, TRUTHFULQA = LEADERBOARD_TASKS.values()


def acc_norm_scores(loglikelihoods: list[float], choices: list[str]) -> list[float]:
    """What acc_norm ranks by: each choice's log-likelihood per character of the choice, without
    the target delimiter (lm-eval's ``acc_norm``; an empty choice counts as one character)."""
    return [ll / max(1, len(c.removeprefix(" ")))
            for ll, c in zip(loglikelihoods, choices, strict=True)]


def task_named(name: str) -> TaskSpec | None:
    """The task called ``name`` or stored under ``--data-dir`` folder ``name`` (older
    contamination reports used the folder names); None if there is none."""
    return LEADERBOARD_TASKS.get(name) or next(
        (t for t in LEADERBOARD_TASKS.values() if t.data_folder == name), None)


def per_subject(name: str) -> bool:
    """Whether task ``name`` runs as one lm-eval task per subject (MMLU)."""
    return LEADERBOARD_TASKS[name].per_subject


def subject_task(name: str, subject: str | None) -> str:
    """lm-eval's task for ``subject`` of task ``name`` (``mmlu_<subject>``); ``name`` itself
    for a task without subjects."""
    spec = LEADERBOARD_TASKS[name]
    return f"{spec.lm_eval_task}_{subject}" if spec.per_subject else name


def subject_of(name: str, lm_eval_name: str) -> str:
    """The subject in lm-eval task ``lm_eval_name`` of per-subject task ``name``."""
    return lm_eval_name.rsplit(f"{LEADERBOARD_TASKS[name].lm_eval_task}_", 1)[1]


def lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).resolve().parent


def mmlu_subjects() -> tuple[str, ...]:
    """The 57 MMLU subjects, as lm-eval defines them (one YAML per subject)."""
    (spec,) = (t for t in LEADERBOARD_TASKS.values() if t.per_subject)
    pattern = lm_eval_tasks_dir() / spec.yaml_relpath
    prefix, suffix = pattern.name.split("{subject}")
    return tuple(sorted(p.name.removeprefix(prefix).removesuffix(suffix)
                        for p in pattern.parent.glob(pattern.name.format(subject="*"))))


def lm_eval_yaml(bench: str, subject: str | None = None) -> Path:
    """lm-eval's own YAML for a leaderboard task (a subject's task for mmlu)."""
    spec = LEADERBOARD_TASKS[bench]
    if spec.per_subject and subject not in mmlu_subjects():
        raise ValueError(f"unknown MMLU subject {subject!r}")
    path = lm_eval_tasks_dir() / spec.yaml_relpath.format(subject=subject)
    if not path.is_file():  # a different lm-eval layout: fail loudly rather than guess
        raise FileNotFoundError(f"lm-eval task config not found: {path}")
    return path


@dataclass
class LocalTask:
    """An lm-eval task over local json files (already in the Hub dataset format).

    ``splits`` maps lm-eval's split roles (training_split, validation_split, test_split and, for
    mmlu, fewshot split ``dev``) to names in ``data_files``.
    """

    bench: str
    data_files: dict[str, str]
    subject: str | None = None
    splits: dict[str, str | None] = field(default_factory=dict)
    n_eval: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return LOCAL_PREFIX + subject_task(self.bench, self.subject)


def task_config(task: LocalTask) -> dict:
    """The YAML body of ``task``: lm-eval's config with the leaderboard's num_fewshot and, for
    local files, the data source and split names overridden."""
    cfg: dict = {
        "include": str(lm_eval_yaml(task.bench, task.subject)),
        "task": task.name,
        "tag": [],  # not a member of lm-eval's groups/tags: results stay per explicit task
        "num_fewshot": LEADERBOARD_TASKS[task.bench].num_fewshot,
    }
    if task.data_files:  # local files; without them lm-eval's Hub dataset stays as it is
        cfg.update(dataset_path="json", dataset_name=None,
                   dataset_kwargs={"data_files": dict(task.data_files)})
        cfg.update(task.splits)
    return cfg


def write_task_yaml(folder: Path, task: LocalTask) -> Path:
    """Write ``task``'s config as ``folder/<name>.yaml`` (lm-eval include_path layout)."""
    return atomic_write_text(folder / f"{task.name}.yaml",
                             yaml.safe_dump(task_config(task), sort_keys=False))


def write_rows(path: Path, rows: list[dict]) -> str:
    """Write rows as JSON lines (the ``json`` dataset builder reads them); returns the path."""
    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    return str(atomic_write(path, write))


def task_manager(folder: Path):
    """An lm-eval TaskManager indexing only the generated configs in ``folder`` (fast: lm-eval's
    own tasks are reached through ``include:`` by path, not by indexing all of them)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(folder), include_defaults=False)


def load_tasks(folder: Path, tasks: list[LocalTask]) -> dict:
    """Build lm-eval Task objects for ``tasks`` (their YAMLs must be in ``folder``)."""
    loaded = task_manager(folder).load([t.name for t in tasks])
    return loaded["tasks"]
