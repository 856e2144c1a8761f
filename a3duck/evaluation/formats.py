"""Leaderboard prompt formats, taken from lm-eval's own task objects so they cannot drift.

``build_mc_prompt(task, shots, doc)`` returns the exact context string lm-eval 0.4.13 builds for
``doc`` after the few-shot examples ``shots`` (description/primer included, examples joined with
the task's fewshot_delimiter) and the continuation strings it scores (target_delimiter + choice).
Docs are in the Hub dataset format each lm-eval task consumes:

- ``mmlu``: question, subject, choices (4 strings), answer (0-3)
- ``arc_challenge``: question, choices {text, label}, answerKey
- ``hellaswag``: activity_label, ctx_a, ctx_b, endings, label (process_docs is applied here)
- ``truthfulqa_mc2``: question, mc2_targets {choices, labels} (0-shot: QA primer, no shots)
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

from a3duck.evaluation.leaderboard import (
    LEADERBOARD_TASKS,
    LocalTask,
    TaskSpec,
    load_tasks,
    write_rows,
    write_task_yaml,
)

__all__ = ["LEADERBOARD_TASKS", "TaskSpec", "build_mc_prompt", "lm_eval_task"]

_SPLITS = ("train", "validation", "test", "dev")


@cache
def _workdir() -> Path:
    from a3duck.scratch import process_folder

    return process_folder("formats")


@lru_cache(maxsize=64)
def lm_eval_task(task: str, subject: str | None = None):
    """lm-eval's Task object for a leaderboard task (``subject`` selects the MMLU subject)."""
    if task not in LEADERBOARD_TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(LEADERBOARD_TASKS)}")
    if LEADERBOARD_TASKS[task].per_subject != (subject is not None):
        raise ValueError("an MMLU doc needs its 'subject'; other tasks take none")
    # lm-eval builds a Task only over a non-empty dataset with the right features: one valid
    # row (the table's placeholder); the prompt of any other doc comes from the same Task.
    row = dict(LEADERBOARD_TASKS[task].placeholder, **({"subject": subject} if subject else {}))
    local = LocalTask(bench=task, subject=subject, data_files={})
    folder = _workdir() / local.name
    data = write_rows(folder / "data.jsonl", [row])
    local.data_files = {split: data for split in _SPLITS}
    write_task_yaml(folder, local)
    return load_tasks(folder, [local])[local.name]


def _processed(task_obj, doc: dict) -> dict:
    """Apply the task's process_docs (HellaSwag's preprocessing) to one doc."""
    process = task_obj.config.process_docs
    if process is None:
        return doc
    import datasets

    return dict(process(datasets.Dataset.from_list([doc]))[0])


def build_mc_prompt(task: str, shots: list[dict], doc: dict) -> tuple[str, list[str]]:
    """(context, continuations) exactly as lm-eval's ``fewshot_context``/``construct_requests``
    build them for ``doc`` with the few-shot examples ``shots`` in the given order."""
    # lm-eval internals (Task.build_qa_turn, fewshot_cfg, resolve_field, messages_to_text):
    # pinned to the tested lm-eval in pyproject.toml; raise the pin only when tests pass.
    from lm_eval.api.utils import Message, messages_to_text

    spec = LEADERBOARD_TASKS.get(task)  # an unknown task: lm_eval_task says which are known
    t = lm_eval_task(task, doc.get("subject") if spec and spec.per_subject else None)
    doc = _processed(t, doc)
    cfg, fs = t.config, t.fewshot_cfg
    messages = []
    description = t.resolve_field(doc, cfg.description) or ""
    if description:  # lm-eval's system turn (no system_instruction is passed in evaluation)
        messages.append(Message("system", description))
    for shot in (_processed(t, s) for s in shots):
        messages += t.build_qa_turn(
            q=t.doc_to_text(shot, fs.doc_to_text),
            c=t.doc_to_choice(shot, fs.doc_to_choice) if fs.doc_to_choice else None,
            a=t.doc_to_target(shot, fs.doc_to_target),
            gen_prefix=t.resolve_field(shot, fs.gen_prefix),
            tgt_delim=fs.target_delimiter, few_delim=fs.fewshot_delimiter,
        )
    messages += t.build_qa_turn(q=t.doc_to_text(doc), c=t.doc_to_choice(doc),
                                tgt_delim=cfg.target_delimiter, few_delim="")
    continuations = [f"{cfg.target_delimiter}{choice}" for choice in t.doc_to_choice(doc)]
    return messages_to_text(messages), continuations
