"""The About tab's record of the default adapter: the compare and eval tables appear only for
the weights they were made with (sha256), as on the model card."""

from __future__ import annotations

import json

from adapter_factory import EVAL_FIXTURE, make_adapter

from a3duck import adapter_folder
from a3duck.space.about_results import results_lines


def compare_json(sha: str | None) -> dict:
    scores = {"base": {"format": 0.25, "correct": 0.5, "exact": 0.0},
              "adapter": {"format": 1.0, "correct": 0.5, "exact": 0.25}}
    return {"adapter": "/somewhere/adapter", "adapter_sha256": sha, "data": "/x/eval.jsonl",
            "n": 4, "scores": scores, "rows": [],
            "changes": {"format": {"gained": [1, 2, 3], "lost": []},
                        "correct": {"gained": [2], "lost": [3]},
                        "exact": {"gained": [4], "lost": []}}}


def test_tables_for_these_weights_only(tiny_llama_dir, tmp_path):
    adapter = make_adapter(tiny_llama_dir, tmp_path / "run" / "adapter", base_id="org/tiny")
    sha = adapter_folder.weights_sha256(adapter)
    (tmp_path / "run" / "compare.json").write_text(json.dumps(compare_json(sha)))
    text = "\n".join(results_lines(adapter, "org/tiny"))
    assert "### Held-out comparison (`a3duck compare`: 4 prompts of `eval.jsonl`, greedy)" in text
    assert "| correct | 50.0% | 50.0% | +0.0% | 1 | 1 |" in text
    assert "| format | 25.0% | 100.0% | +75.0% | 3 | 0 |" in text
    assert "not evaluated" in text and "/somewhere" not in text and "/x/" not in text
    (tmp_path / "run" / "compare.json").write_text(json.dumps(compare_json("0" * 64)))
    text = "\n".join(results_lines(adapter, "org/tiny"))
    assert "`compare.json` is not for these weights" in text and "| format |" not in text
    assert results_lines(None, "org/tiny") == []


def test_eval_table_when_the_results_match(tiny_llama_dir, tmp_path):
    adapter = make_adapter(tiny_llama_dir, tmp_path / "run" / "adapter", base_id="org/tiny")
    doc = json.loads(EVAL_FIXTURE.read_text())
    doc["adapter_sha256"] = {"adapter": adapter_folder.weights_sha256(adapter)}
    doc["base_model"] = "org/tiny"
    (tmp_path / "run" / "eval_results.json").write_text(json.dumps(doc))
    text = "\n".join(results_lines(adapter, "org/tiny"))
    assert "### Evaluation (`a3duck eval`," in text
    assert "| Task | Metric | Shots | Base | Adapter | Δ |" in text
    assert text.count("\n| ") >= 4  # header and a row per task
