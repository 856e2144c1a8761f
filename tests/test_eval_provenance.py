"""Provenance on every result row, shown on the card; the Hub's `.eval_results` entries; the
original release's own row; several-adapter results on one adapter's card."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
import yaml
from adapter_factory import EVAL_FIXTURE, make_adapter

from a3duck.evaluation import provenance
from a3duck.publish import card as card_mod

HUB_SOURCES = {
    "arc_challenge": {"kind": "hub", "dataset": "allenai/ai2_arc", "config": "ARC-Challenge",
                      "revision": None},
    "hellaswag": {"kind": "hub", "dataset": "Rowan/hellaswag", "config": None, "revision": "abc"},
    "mmlu": {"kind": "hub", "dataset": "cais/mmlu", "config": None, "revision": None},
    "truthfulqa_mc2": {"kind": "hub", "dataset": "truthfulqa/truthful_qa",
                       "config": "multiple_choice", "revision": None},
}
COMMON = {"lm_eval_version": "0.4.13", "backend": "a3duck", "dtype": "float32", "batch_size": 8,
          "limit": None, "date": "2026-01-15T10:00:00+00:00"}


def _fixture_with_provenance(tmp_path, **changes):
    doc = json.loads(EVAL_FIXTURE.read_text())
    doc.update(changes)
    provenance.stamp(doc["results"], HUB_SOURCES, **COMMON)
    path = tmp_path / "eval_results.json"
    path.write_text(json.dumps(doc))
    return path, doc


@pytest.fixture(scope="module")
def adapter(tiny_llama_dir, tmp_path_factory):
    return make_adapter(tiny_llama_dir, tmp_path_factory.mktemp("prov") / "adapter",
                        base_id="test-org/tiny-llama")


def test_rows_carry_provenance_and_local_files_their_sha256(tmp_path):
    (tmp_path / "arc").mkdir()
    (tmp_path / "arc" / "ARC-Challenge-Dev.jsonl").write_bytes(b'{"x": 1}\n')
    rows = [{"model": "base", "task": "arc_challenge", "n_docs": 3, "limited": True},
            {"model": "base", "task": "average", "n_docs": 3, "limited": True}]
    sources = provenance.data_sources({"arc_challenge": ["a3duck_arc_challenge"]}, {}, tmp_path)
    provenance.stamp(rows, sources, **COMMON)
    p = rows[0]["provenance"]
    assert p["partial"] and p["n_docs"] == 3 and p["backend"] == "a3duck"
    assert p["data"] == {"kind": "local", "files": {
        "arc/ARC-Challenge-Dev.jsonl": hashlib.sha256(b'{"x": 1}\n').hexdigest()}}
    assert rows[1]["provenance"]["data"] == {"kind": "tasks", "tasks": ["arc_challenge"]}


def test_card_shows_provenance_and_writes_hub_eval_results(adapter, tmp_path):
    from huggingface_hub import parse_eval_result_entries

    from a3duck.cli import main

    path, _ = _fixture_with_provenance(tmp_path)
    out = tmp_path / "card" / "README.md"
    assert main(["card", "--adapter", str(adapter), "--eval-results", str(path),
                 "--output", str(out)]) == 0
    text = out.read_text()
    assert ("- lm-eval 0.4.13, backend `a3duck`, float32, batch size 8, limit none (every "
            "document), run 2026-01-15T10:00:00+00:00") in text
    assert ("- HellaSwag: 10,042 documents; Hub dataset Rowan/hellaswag, revision abc"
            in text)
    entries = parse_eval_result_entries(yaml.safe_load(
        (tmp_path / "card" / ".eval_results" / "a3duck.yaml").read_text()))
    got = {e.dataset_id: e for e in entries}
    assert set(got) == {s["dataset"] for s in HUB_SOURCES.values()}
    assert got["allenai/ai2_arc"].value == 27.5 and got["allenai/ai2_arc"].task_id == "ARC-Challenge"
    assert got["Rowan/hellaswag"].dataset_revision == "abc"
    # the original release's own numbers, with their source
    assert "| A3Duck-13b (original release) | 55.20 | 62.29 | 56.20 | 25.95 | 49.82 |" in text
    assert "the original A3Duck release's own table" in text


def test_partial_run_writes_no_hub_eval_results(adapter, tmp_path):
    from a3duck.publish.card_results import hub_eval_entries

    _, doc = _fixture_with_provenance(tmp_path)
    partial = copy.deepcopy(doc)
    for row in partial["results"]:
        row["limited"] = True
    assert hub_eval_entries(partial) == [] and len(hub_eval_entries(doc)) == 4


def test_several_adapter_results_on_one_adapters_card(adapter, tmp_path):
    doc = json.loads(EVAL_FIXTURE.read_text())
    other = [dict(r, model="other", value=0.9) for r in doc["results"] if r["model"] == "adapter"]
    mine = [dict(r, model="adapter-a") for r in doc["results"] if r["model"] == "adapter"]
    doc["results"] = [r for r in doc["results"] if r["model"] == "base"] + mine + other
    doc["adapters"] = {"adapter-a": adapter.name, "other": "someone/other"}
    path = tmp_path / "multi.json"
    path.write_text(json.dumps(doc))
    text = str(card_mod.render_card(adapter, eval_results=path))
    assert "| ARC-Challenge | 25 | acc_norm | 25.00 ± 1.43 | 27.50 ± 1.42 | +2.50 | 1,172 |" in text
    doc["adapters"] = {"adapter-a": "elsewhere", "other": "someone/other"}
    path.write_text(json.dumps(doc))
    with pytest.raises(card_mod.CardError, match="not adapter"):
        card_mod.render_card(adapter, eval_results=path)


def test_hub_source_names_one_config_or_counts_a_benchmarks_configs():
    """MMLU spans one dataset config per subject: no single config is named, their count is."""
    from types import SimpleNamespace

    from a3duck.publish.card_results import _source

    def task(path, name, kwargs=None):
        return SimpleNamespace(config=SimpleNamespace(dataset_path=path, dataset_name=name,
                                                      dataset_kwargs=kwargs))

    objects = {"arc": task("allenai/ai2_arc", "ARC-Challenge", {"revision": "r1"}),
               **{f"mmlu_{s}": task("cais/mmlu", s) for s in ("anatomy", "astronomy", "virology")}}
    names = {"arc_challenge": ["arc"], "mmlu": ["mmlu_anatomy", "mmlu_astronomy", "mmlu_virology"]}
    sources = provenance.data_sources(names, objects, None)
    assert sources["arc_challenge"] == {"kind": "hub", "dataset": "allenai/ai2_arc",
                                        "config": "ARC-Challenge", "revision": "r1"}
    assert sources["mmlu"] == {"kind": "hub", "dataset": "cais/mmlu", "config": None,
                               "revision": None, "configs": 3}
    assert _source(sources["mmlu"]) == ("Hub dataset cais/mmlu (3 configs), "
                                        "revision not pinned (main)")
    assert _source(sources["arc_challenge"]) == ("Hub dataset allenai/ai2_arc (ARC-Challenge), "
                                                 "revision r1")
