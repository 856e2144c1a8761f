"""The Open LLM Leaderboard (v1) task specs, and lm-eval task configs for local benchmark files.

A local task is lm-eval's own task YAML (``include:``d by absolute path, so its doc_to_text,
doc_to_choice, doc_to_target, process_docs, description and few-shot settings apply unchanged)
with only the data source overridden: ``dataset_path: json`` and ``data_files`` pointing at rows
converted to the Hub dataset format that lm-eval's task consumes. Nothing here loads a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from a3duck.files import atomic_write, atomic_write_text

LOCAL_PREFIX = "a3duck_"
FEWSHOT_SEED = 1234  # lm-eval's default fewshot_random_seed (simple_evaluate), kept explicit


@dataclass(frozen=True)
class TaskSpec:
    """One leaderboard column: how lm-eval names and scores it."""

    name: str  # the a3duck / eval_results.json name
    title: str  # table header
    lm_eval_task: str  # lm-eval task; for mmlu the subject tasks are ``mmlu_<subject>``
    num_fewshot: int
    metric: str  # the lm-eval metric key reported (mc2 is key ``acc`` of truthfulqa_mc2)
    yaml_relpath: str  # lm-eval's own task YAML, relative to lm_eval/tasks


LEADERBOARD_TASKS: dict[str, TaskSpec] = {
    "arc_challenge": TaskSpec("arc_challenge", "ARC", "arc_challenge", 25, "acc_norm",
                              "arc/arc_challenge.yaml"),
    "hellaswag": TaskSpec("hellaswag", "HellaSwag", "hellaswag", 10, "acc_norm",
                          "hellaswag/hellaswag.yaml"),
    "mmlu": TaskSpec("mmlu", "MMLU", "mmlu", 5, "acc", "mmlu/default/mmlu_{subject}.yaml"),
    "truthfulqa_mc2": TaskSpec("truthfulqa_mc2", "TruthfulQA", "truthfulqa_mc2", 0, "acc",
                               "truthfulqa/truthfulqa_mc2.yaml"),
}
TASK_ORDER = ("arc_challenge", "hellaswag", "mmlu", "truthfulqa_mc2")  # leaderboard column order


def lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).resolve().parent


def mmlu_subjects() -> tuple[str, ...]:
    """The 57 MMLU subjects, as lm-eval defines them (one YAML per subject)."""
    folder = lm_eval_tasks_dir() / "mmlu" / "default"
    return tuple(sorted(p.stem.removeprefix("mmlu_") for p in folder.glob("mmlu_*.yaml")))


def lm_eval_yaml(bench: str, subject: str | None = None) -> Path:
    """lm-eval's own YAML for a leaderboard task (a subject's task for mmlu)."""
    spec = LEADERBOARD_TASKS[bench]
    if bench == "mmlu" and subject not in mmlu_subjects():
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
        base = f"mmlu_{self.subject}" if self.bench == "mmlu" else self.bench
        return LOCAL_PREFIX + base


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
