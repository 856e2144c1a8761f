"""The About tab's record of the default adapter: the compare and eval tables appear only for
the weights they were made with (sha256), as on the model card; the Compare tab's opening
question comes from the same verified results; a local adapter's card is a page of the Space."""

from __future__ import annotations

import json

import pytest
from adapter_factory import EVAL_FIXTURE, make_adapter

from a3duck import adapter_folder
from a3duck.space.about_results import domain_prompt, results_lines
from a3duck.space.card_page import card_file, card_href, render


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


def row(number, question, base, adapter):
    """A compare.json row: ``base``/``adapter`` are (format, correct) of each answer."""
    side = lambda f, c: {"answer": "...", "format": f, "correct": c, "exact": False}  # noqa: E731
    return {"row": number, "prompt": "<rendered>", "reference": "x", "question": question,
            "base": side(*base), "adapter": side(*adapter)}


def test_compare_opens_on_a_held_out_question_the_adapter_changes(tiny_llama_dir, tmp_path):
    adapter = make_adapter(tiny_llama_dir, tmp_path / "run" / "adapter", base_id="org/tiny")
    assert domain_prompt(adapter) is None  # no compare results: the Space's generic prompt
    doc = compare_json(adapter_folder.weights_sha256(adapter))
    doc["rows"] = [row(1, None, (False, False), (True, True)),  # a two-turn conversation
                   row(2, "What is 2 + 2?", (True, True), (True, True)),  # no change
                   row(3, "What is the capital of Peru?", (False, True), (True, True))]
    (tmp_path / "run" / "compare.json").write_text(json.dumps(doc))
    assert domain_prompt(adapter) == "What is the capital of Peru?"
    doc["rows"] = doc["rows"][:2]  # nothing the adapter changes: the first one-turn question
    (tmp_path / "run" / "compare.json").write_text(json.dumps(doc))
    assert domain_prompt(adapter) == "What is 2 + 2?"
    doc["adapter_sha256"] = "0" * 64  # another run's results say nothing of these weights
    (tmp_path / "run" / "compare.json").write_text(json.dumps(doc))
    assert domain_prompt(adapter) is None and domain_prompt(None) is None


def test_card_page_renders_the_body_without_metadata_or_raw_html(tmp_path):
    card = tmp_path / "README.md"
    card.write_text("---\nlicense: mit\ntags: [a3duck]\n---\n# My adapter\n\n"
                    "<!-- a note -->\n| Task | acc |\n|---|---|\n| arc | 0.5 |\n\n<script>alert(1)</script>\n")
    page = render(card.read_text(), "demo: model card")
    assert "<h1>My adapter</h1>" in page and "<td>arc</td>" in page
    assert "license: mit" not in page and "<script>" not in page and "&lt;script&gt;" in page
    assert "a note" not in page
    assert card_file(tmp_path, local=True) == card and card_file(tmp_path, local=False) is None
    assert card_file(tmp_path / "nowhere", local=True) is None
    card.write_text("---\nlibrary_name: peft\n---\n# Model Card for Model ID\n")
    assert card_file(tmp_path, local=True) is None  # PEFT's placeholder is no card of ours
    assert card_href("my adapter/v2") == "/card/my%20adapter%2Fv2"


@pytest.mark.slow
def test_running_space_links_the_card_and_opens_compare_on_the_adapters_data(tiny_llama_dir,
                                                                             tmp_path):
    """Through the running app: the About tab's link answers with the rendered card, and the
    Compare endpoint's instruction defaults to the held-out question (gradio_client's API)."""
    import urllib.request

    from gradio_client import Client
    from space_support import load_runtime, serve

    from a3duck.publish.card import render_card
    from a3duck.space.handlers import about_markdown

    adapter = make_adapter(tiny_llama_dir, tmp_path / "run" / "adapter")
    render_card(adapter).save(str(adapter / adapter_folder.CARD))
    doc = compare_json(adapter_folder.weights_sha256(adapter))
    doc["rows"] = [row(3, "What is the capital of Peru?", (False, True), (True, True))]
    (tmp_path / "run" / "compare.json").write_text(json.dumps(doc))
    rt = load_runtime(tiny_llama_dir, adapter)
    assert "[model card](/card/run)" in about_markdown(rt)
    with serve(rt) as url:
        with urllib.request.urlopen(url + "card/run", timeout=30) as answer:
            page = answer.read().decode()
        assert answer.headers["content-type"].startswith("text/html")
        assert "<h1>" in page and "(IA)³" in page and "&lt;!--" not in page and "library_name:" not in page
        assert str(tmp_path) not in page
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url + "card/other", timeout=30)
        api = Client(url, verbose=False).view_api(print_info=False, return_format="dict")
        params = api["named_endpoints"]["/compare"]["parameters"]
        instruction = next(p for p in params if p["parameter_name"] == "instruction")
        assert instruction["parameter_default"] == "What is the capital of Peru?"
