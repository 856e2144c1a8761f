"""eval_results.json rows, the MMLU plain vs size-weighted mean, the table, atomic writing."""

from __future__ import annotations

import json

import pytest

from a3duck.evaluation import results as res

SUBJECT_TASKS = ["a3duck_mmlu_anatomy", "a3duck_mmlu_astronomy"]


def _lm_eval_output(scale: float = 1.0) -> dict:
    """The parts of a simple_evaluate() result that results.py reads."""
    r = {
        "a3duck_arc_challenge": {"acc,none": 0.2, "acc_norm,none": 0.3 * scale,
                                 "acc_norm_stderr,none": 0.05},
        "a3duck_hellaswag": {"acc_norm,none": 0.4 * scale, "acc_norm_stderr,none": 0.04},
        "a3duck_mmlu_anatomy": {"acc,none": 0.5 * scale, "acc_stderr,none": 0.1},
        "a3duck_mmlu_astronomy": {"acc,none": 0.2 * scale, "acc_stderr,none": 0.2},
        "a3duck_truthfulqa_mc2": {"acc,none": 0.45 * scale, "acc_stderr,none": "N/A"},
    }
    n = {"a3duck_arc_challenge": (50, 299), "a3duck_hellaswag": (400, 400),
         "a3duck_mmlu_anatomy": (10, 10), "a3duck_mmlu_astronomy": (30, 30),
         "a3duck_truthfulqa_mc2": (300, 300)}
    return {"results": r, "n-samples": {k: {"effective": e, "original": o}
                                        for k, (e, o) in n.items()}}


NAMES = {"arc_challenge": ["a3duck_arc_challenge"], "hellaswag": ["a3duck_hellaswag"],
         "mmlu": SUBJECT_TASKS, "truthfulqa_mc2": ["a3duck_truthfulqa_mc2"]}


def test_mmlu_plain_mean_is_reported_and_weighted_kept():
    rows, details = res.rows_for_model("base", _lm_eval_output(), NAMES)
    mmlu = next(r for r in rows if r["task"] == "mmlu")
    assert mmlu["value"] == pytest.approx((0.5 + 0.2) / 2)  # plain: 0.35
    assert details["mmlu"]["size_weighted_mean"] == pytest.approx((0.5 * 10 + 0.2 * 30) / 40)
    assert details["mmlu"]["plain_mean"] == mmlu["value"]
    assert mmlu["stderr"] == pytest.approx((0.1 ** 2 + 0.2 ** 2) ** 0.5 / 2)
    assert (mmlu["n_docs"], mmlu["num_fewshot"], mmlu["metric"]) == (40, 5, "acc")


def test_rows_schema_average_and_limited():
    rows, _ = res.rows_for_model("base", _lm_eval_output(), NAMES, partial={"mmlu"})
    assert [r["task"] for r in rows] == ["arc_challenge", "hellaswag", "mmlu",
                                         "truthfulqa_mc2", "average"]
    for r in rows:
        assert set(r) == {"model", "task", "metric", "value", "stderr", "num_fewshot",
                          "n_docs", "limited"}
        assert 0.0 <= r["value"] <= 1.0
    by = {r["task"]: r for r in rows}
    assert by["arc_challenge"]["metric"] == "acc_norm" and by["arc_challenge"]["value"] == 0.3
    assert by["truthfulqa_mc2"]["metric"] == "mc2"  # lm-eval's key is acc; the score is mc2
    assert "mc2" in res.format_table(rows)
    assert by["arc_challenge"]["limited"] and by["mmlu"]["limited"]
    assert not by["hellaswag"]["limited"] and not by["truthfulqa_mc2"]["limited"]
    assert by["truthfulqa_mc2"]["stderr"] is None  # lm-eval's "N/A"
    assert by["average"]["value"] == pytest.approx((0.3 + 0.4 + 0.35 + 0.45) / 4)


def test_no_average_without_all_four():
    names = {k: v for k, v in NAMES.items() if k != "hellaswag"}
    rows, _ = res.rows_for_model("adapter", _lm_eval_output(), names)
    assert "average" not in {r["task"] for r in rows}


def test_table_base_adapter_deltas_and_missing():
    base, _ = res.rows_for_model("base", _lm_eval_output(), NAMES)
    adapter, _ = res.rows_for_model("adapter", _lm_eval_output(scale=1.1), NAMES)
    table = res.format_table(base + adapter)
    lines = table.splitlines()
    assert lines[0].split() == ["Task", "Metric", "Shots", "Base", "Adapter", "Delta"]
    arc = next(line for line in lines if line.startswith("ARC"))
    assert arc.split() == ["ARC*", "acc_norm", "25", "30.00", "33.00", "+3.00"]
    assert next(line for line in lines if line.startswith("AVG")).split()[-1] == "+3.75"
    only = res.format_table([r for r in base if r["task"] == "arc_challenge"],
                            missing={"hellaswag": "no files"})
    assert "HellaSwag" in only and "missing" in only


def test_document_and_atomic_write(tmp_path):
    rows, _ = res.rows_for_model("base", _lm_eval_output(), NAMES)
    doc = res.build_document("HuggingFaceTB/SmolLM2-135M-Instruct", None, rows, details={})
    assert list(doc)[:6] == ["base_model", "adapter", "lm_eval_version", "a3duck_version",
                             "date", "results"]
    assert doc["lm_eval_version"] == "0.4.13"
    out = res.write_results(tmp_path / "sub" / "eval_results.json", doc)
    assert json.loads(out.read_text()) == doc
    assert [p.name for p in out.parent.iterdir()] == ["eval_results.json"]  # no temp left
