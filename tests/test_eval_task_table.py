"""One leaderboard task table (evaluation/leaderboard.py): every reader agrees with it, and the
contamination report's benchmarks are named as the card names the tasks."""

from __future__ import annotations

import json

import pytest

from a3duck.evaluation import contamination as C
from a3duck.evaluation.leaderboard import LEADERBOARD_TASKS, TASK_ORDER, task_named
from a3duck.publish import card
from a3duck.space import scoring

TITLES = ["ARC-Challenge", "HellaSwag", "MMLU", "TruthfulQA (mc2)"]


def test_readers_take_their_facts_from_the_table():
    assert TASK_ORDER == ("arc_challenge", "hellaswag", "mmlu", "truthfulqa_mc2")
    assert card.TASK_ORDER == (*TASK_ORDER, "average")
    assert list(scoring.TASK_TITLES.values()) == TITLES  # every task has bundled examples
    assert [LEADERBOARD_TASKS[t].num_fewshot for t in TASK_ORDER] == [25, 10, 5, 0]
    assert [LEADERBOARD_TASKS[t].leaderboard_metric for t in TASK_ORDER] == [
        "acc_norm", "acc_norm", "acc", "mc2"]


@pytest.mark.parametrize("task", TASK_ORDER)
def test_placeholder_is_a_valid_doc_of_its_task(task):
    spec = LEADERBOARD_TASKS[task]
    assert set(spec.fields) <= set(spec.placeholder)
    assert scoring.check_doc(task, spec.placeholder) is spec.placeholder
    assert scoring.gold_indices(task, spec.placeholder) == [0 if task != "mmlu" else 1]
    question, options = spec.question(spec.placeholder)
    assert question and (options is None or len(options) >= 2)
    assert task_named(task) is spec and task_named(spec.data_folder) is spec


def test_card_names_contamination_benchmarks_like_the_eval_table(shared_data, tmp_path):
    """A real check-contamination report rendered into the card: the four tasks by their card
    titles, in leaderboard order (it printed `MMLU, arc, HellaSwag, truthfulqa` before)."""
    arc = json.loads((shared_data / "arc" / "ARC-Challenge-Dev.jsonl").read_text(
        encoding="utf-8").splitlines()[0])["question"]
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"instruction": arc["stem"], "input": " ".join(
        c["text"] for c in arc["choices"]), "output": "A"}) + "\n" + json.dumps(
        {"instruction": "Name a prime number.", "input": "", "output": "7"}) + "\n")
    report, *_ = C.check(str(train), shared_data)
    assert list(report["benchmarks"]) == list(TASK_ORDER)
    assert report["benchmarks"]["arc_challenge"]["exact_duplicates"] == 1
    path = tmp_path / "contamination.json"
    path.write_text(json.dumps(report))
    rows = card.contamination_summary(path)["rows"]
    assert [r["name"] for r in rows] == TITLES
    assert [r["status"] for r in rows] == ["checked"] * 4
    assert rows[0]["exact"] == "1"


def test_card_reads_reports_written_with_folder_names(tmp_path):
    """Reports written before the task table keyed benchmarks by --data-dir folder."""
    old = {"method": "m", "threshold": 0.8, "training_rows": 2, "flagged_training_rows": 0,
           "benchmarks": {name: {"status": "missing", "files": [], "questions": 0}
                          for name in ("mmlu", "arc", "hellaswag", "truthfulqa")}}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    names = [r["name"] for r in card.contamination_summary(path)["rows"]]
    assert names == ["MMLU", "ARC-Challenge", "HellaSwag", "TruthfulQA (mc2)"]
