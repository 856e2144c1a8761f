"""The model card: facts from the artifacts, Hub metadata, partial runs, Korean, references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from adapter_factory import EVAL_FIXTURE, make_adapter

from a3duck.publish import card as card_mod

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hub_base_adapter(tiny_llama_dir, tmp_path_factory) -> Path:
    """Adapter recording a Hub id as base (matches the eval fixture's base_model)."""
    return make_adapter(tiny_llama_dir, tmp_path_factory.mktemp("card") / "adapter",
                        base_id="test-org/tiny-llama")


def render(adapter, **kwargs):
    from huggingface_hub import ModelCard

    text = str(card_mod.render_card(adapter, **kwargs))
    return text, ModelCard(text)


def test_eval_table_and_model_index(hub_base_adapter):
    text, card = render(hub_base_adapter, eval_results=EVAL_FIXTURE)
    assert card.data.base_model == "test-org/tiny-llama"
    assert card.data.library_name == "peft" and card.data.pipeline_tag == "text-generation"
    assert card.data.license == "mit" and {"ia3", "peft"} <= set(card.data.tags)
    assert card.data.datasets == ["garage-bAInd/Open-Platypus"]
    results = {r.dataset_type: r for r in card.data.eval_results}
    assert set(results) == {"ai2_arc", "hellaswag", "cais/mmlu", "truthful_qa"}
    arc, tqa = results["ai2_arc"], results["truthful_qa"]
    assert (arc.metric_type, arc.metric_value, arc.dataset_config, arc.dataset_split) == (
        "acc_norm", 27.5, "ARC-Challenge", "test")
    assert arc.dataset_args == {"num_few_shot": 25} and arc.task_type == "text-generation"
    assert (tqa.metric_type, tqa.metric_value, tqa.dataset_args) == ("mc2", 47.0,
                                                                     {"num_few_shot": 0})
    assert results["cais/mmlu"].metric_value == 24.5 and results["hellaswag"].metric_value == 31
    # The table: base, adapter, delta per task, values from the fixture in percent.
    assert "| ARC-Challenge | 25 | acc_norm | 25.00 ± 1.43 | 27.50 ± 1.42 | +2.50 | 1,172 |" in text
    assert "| TruthfulQA (mc2) | 0 | mc2 | 45.00 ± 1.36 | 47.00 ± 1.45 | +2.00 | 817 |" in text
    assert "| Average | – | mean of the four | 31.00 | 32.50 | +1.50 | – |" in text
    assert "Partial run" not in text and "Not evaluated" not in text


def test_missing_eval_file_says_not_evaluated(hub_base_adapter, tmp_path):
    text, card = render(hub_base_adapter, eval_results=tmp_path / "absent.json")
    assert "**Not evaluated.**" in text
    assert card.data.eval_results is None and "model-index" not in text
    assert "27.50" not in text and "| ARC-Challenge |" not in text


def test_limited_rows_are_partial_and_left_out_of_model_index(hub_base_adapter, tmp_path):
    data = json.loads(EVAL_FIXTURE.read_text())
    for row in data["results"]:
        row["limited"] = row["task"] == "arc_challenge"
    path = tmp_path / "eval_results.json"
    path.write_text(json.dumps(data))
    text, card = render(hub_base_adapter, eval_results=path)
    assert "| ARC-Challenge | 25 | acc_norm | 25.00 ± 1.43 † | 27.50 ± 1.42 † |" in text
    assert "**Partial run** (`--limit`)" in text
    assert "ai2_arc" not in {r.dataset_type for r in card.data.eval_results}
    assert len(card.data.eval_results) == 3


def test_local_file_runs_stay_out_of_model_index(hub_base_adapter, tmp_path):
    data = json.loads(EVAL_FIXTURE.read_text())
    data |= {"settings": {"data": "local files (--data-dir)", "backend": "fast"},
             "notes": ["ARC: scored /home/u/shared/data/arc/ARC-Challenge-Dev.jsonl (no Test file)"]}
    path = tmp_path / "eval_results.json"
    path.write_text(json.dumps(data))
    text, card = render(hub_base_adapter, eval_results=path)
    assert "**local benchmark files**" in text and card.data.eval_results is None
    assert "- ARC: scored ARC-Challenge-Dev.jsonl (no Test file)" in text and "/home/u" not in text
    assert "| MMLU | 5 | acc | 24.00 ± 0.40 | 24.50 ± 0.40 | +0.50 | 14,042 |" in text


def test_eval_results_for_another_base_are_refused(hub_base_adapter, tmp_path):
    data = json.loads(EVAL_FIXTURE.read_text()) | {"base_model": "someone/other-model"}
    path = tmp_path / "eval_results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(card_mod.CardError, match="someone/other-model"):
        card_mod.render_card(hub_base_adapter, eval_results=path)


def test_parameter_counts_from_adapter_file_and_base_config(tiny_llama_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from a3duck import models

    adapter = make_adapter(tiny_llama_dir, tmp_path / "adapter")  # base = local folder
    peft_model = models.attach_ia3(AutoModelForCausalLM.from_pretrained(tiny_llama_dir))
    trainable, total = models.count_parameters(peft_model)
    base_total = total - trainable
    # 2 layers x (k 32 + v 32 + down 128) = 384 scaling values
    assert trainable == 384
    counts = card_mod.parameter_counts(adapter, str(tiny_llama_dir))
    assert counts["trainable"] == f"{trainable:,}" and counts["total"] == f"{base_total:,}"
    assert counts["percent"] == f"{100 * trainable / total:.4f}"
    text, _ = render(adapter)
    assert f"| trainable parameters | {trainable:,} |" in text
    assert f"| trainable fraction | {100 * trainable / total:.4f} %" in text


def test_hyperparameters_training_run_contamination_and_plots(hub_base_adapter, tmp_path):
    report = {"data": "train.jsonl", "method": "exact + char 5-gram", "threshold": 0.8,
              "training_rows": 120, "flagged_training_rows": 4, "benchmarks": {
                  "mmlu": {"status": "checked", "files": ["/abs/mmlu/val/x.csv"], "questions": 1531,
                           "exact_duplicates": 3, "near_duplicates": 0,
                           "contaminated_questions": 3},
                  "hellaswag": {"status": "checked", "files": [], "questions": 500,
                                "exact_duplicates": 0, "near_duplicates": 1,
                                "contaminated_questions": 1},
                  "truthfulqa_mc2": {"status": "missing", "files": [], "questions": 0}}}
    path = tmp_path / "contamination.json"
    path.write_text(json.dumps(report))
    plots = hub_base_adapter / "plots"
    plots.mkdir(exist_ok=True)
    (plots / "ia3_vectors.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    try:
        text, _ = render(hub_base_adapter, contamination=path)
    finally:
        (plots / "ia3_vectors.png").unlink()
        plots.rmdir()
    config = yaml.safe_load((hub_base_adapter / "a3duck_config.yaml").read_text())
    assert f"| learning rate | {config['learning_rate']:g} |" in text
    assert "| batch size | 16 |" in text and "| max steps | 3 |" in text
    assert "| optimizer steps | 3 |" in text and "| training tokens | 1,536 |" in text
    assert "method: exact + char 5-gram" in text and "threshold: 0.8" in text
    assert "4 of 120 training rows were flagged" in text
    assert "| MMLU | checked | 1,531 | 3 | 0 | 3 |" in text
    assert "| HellaSwag | checked | 500 | 0 | 1 | 1 |" in text
    assert "| TruthfulQA (mc2) | missing | 0 | – | – | – |" in text
    assert "/abs/mmlu" not in text
    assert "![plots/ia3_vectors.png](plots/ia3_vectors.png)" in text
    assert "**Not evaluated.**" in text  # no eval file next to this adapter


def test_reference_rows_are_labelled_as_published(hub_base_adapter):
    text, _ = render(hub_base_adapter)
    assert ("| [OpenOrca-Platypus2-13B](https://huggingface.co/Open-Orca/OpenOrca-Platypus2-13B)"
            " | 62.88 | 83.19 | 59.50 | 52.69 | 64.56 |") in text
    assert ("| [Platypus2-13B](https://huggingface.co/garage-bAInd/Platypus2-13B)"
            " | 61.26 | 82.56 | 56.70 | 44.86 | 61.35 |") in text
    assert ("| [Llama-2-13B](https://huggingface.co/meta-llama/Llama-2-13b-hf)"
            " | 59.39 | 82.13 | 55.77 | 37.38 | 58.67 |") in text
    assert 'The original A3Duck release labelled this row "Platypus2-13B"' in text
    refs = yaml.safe_load(card_mod.REFERENCES.read_text())
    for row in refs["models"]:  # the stored averages are the means of the four tasks
        s = row["scores"]
        if row.get("average_as_published"):  # a release's own figure, kept as published
            continue
        mean = (s["arc_challenge"] + s["hellaswag"] + s["mmlu"] + s["truthfulqa_mc2"]) / 4
        assert abs(mean - s["average"]) < 0.006, row["label"]


def test_korean_rendering_keeps_facts(hub_base_adapter):
    text, card = render(hub_base_adapter, eval_results=EVAL_FIXTURE, lang="ko")
    assert "## 평가" in text and "## 사용법" in text and "## (IA)³란" in text
    assert "| ARC-Challenge | 25 | acc_norm | 25.00 ± 1.43 | 27.50 ± 1.42 | +2.50 |" in text
    assert "OpenOrca-Platypus2-13B 참고: 원래 A3Duck 릴리스는" in text
    assert len(card.data.eval_results) == 4


def test_cli_writes_readme_into_adapter_folder(hub_base_adapter, tmp_path):
    from a3duck.cli import main

    readme = hub_base_adapter / "README.md"
    assert main(["card", "--adapter", str(hub_base_adapter),
                 "--eval-results", str(EVAL_FIXTURE)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("---\n") and "generated by `a3duck card`" in text
    assert 'AutoPeftModelForCausalLM.from_pretrained("DopeorNope/A3_duck")' in text
    assert not list(hub_base_adapter.glob(".README.md.*"))  # no temp file left behind


def test_card_headers_come_from_the_task_declarations(hub_base_adapter):
    """The comparison table's column headers are the TaskSpecs' card_header: the templates
    type no task title or shot count (adding a task adds its column)."""
    from a3duck.evaluation.leaderboard import LEADERBOARD_TASKS
    from a3duck.publish.card import TEMPLATE_DIR

    headers = [t.card_header for t in LEADERBOARD_TASKS.values()]
    assert headers == ["ARC (25-shot)", "HellaSwag (10-shot)", "MMLU (5-shot)",
                       "TruthfulQA (0-shot, mc2)"]
    for template in TEMPLATE_DIR.glob("README.*.md.jinja"):
        text = template.read_text(encoding="utf-8")
        assert "-shot" not in text, template
        assert not any(t.title in text for t in LEADERBOARD_TASKS.values()), template
    for lang, first, last in (("en", "model", "average"), ("ko", "모델", "평균")):
        card = str(card_mod.render_card(hub_base_adapter, lang=lang))
        assert (f"| {first} | ARC (25-shot) | HellaSwag (10-shot) | MMLU (5-shot) | "
                f"TruthfulQA (0-shot, mc2) | {last} |\n|---|---|---|---|---|---|\n") in card
