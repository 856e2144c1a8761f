"""Mixtures of several data sources: parsing, column mapping, weighted sampling, reports."""

import pytest
from conftest import write_jsonl

from a3duck import dataset as DS
from a3duck.config import TrainConfig
from a3duck.errors import ConfigError
from a3duck.sources import Source, map_columns, mixture_order, parse_sources


def test_plain_string_is_one_source_and_lists_are_validated():
    assert parse_sources("garage-bAInd/Open-Platypus") == [Source("garage-bAInd/Open-Platypus")]
    with pytest.raises(ConfigError) as err:
        TrainConfig(data=[{"path": "a.jsonl", "weight": 0.5}, {"path": "b.jsonl"},
                          {"path": "c.jsonl", "weight": -1, "colums": {}},
                          {"path": "d.jsonl", "columns": {"question": "q"}}])
    msg = str(err.value)
    # one message for every problem (config_checks): "- data: source N: ..." per source
    assert msg.startswith("config: 3 problems")
    assert "data: source 3: needs a `path` and only the keys" in msg and "(unknown: colums)" in msg
    assert "data: source 4: unknown schema field(s) in columns: question" in msg
    assert "data: give every source a weight, or none" in msg


def test_openorca_columns_become_system_user_assistant_turns():
    cols = {"system": "system_prompt", "user": "question", "assistant": "response"}
    row = {"id": "flan.1", "system_prompt": "", "question": "2+2?", "response": "4"}
    assert map_columns(row, cols) == {"messages": [{"role": "user", "content": "2+2?"},
                                                   {"role": "assistant", "content": "4"}]}
    row["system_prompt"] = "Be exact."
    assert map_columns(row, cols)["messages"][0] == {"role": "system", "content": "Be exact."}
    assert map_columns({"q": "a", "r": "b"}, {"instruction": "q", "output": "r"}) == {
        "instruction": "a", "output": "b"}


def test_weights_075_025_sampled_within_3_percent_over_4000_draws():
    sources = [Source("a", weight=0.75), Source("b", weight=0.25)]
    order = mixture_order([50, 30], sources, seed=7, draws=4000)
    share = sum(1 for s, _ in order if s == 0) / len(order)
    assert len(order) == 4000 and abs(share - 0.75) <= 0.03
    assert order == mixture_order([50, 30], sources, seed=7, draws=4000)  # seeded
    assert order != mixture_order([50, 30], sources, seed=8, draws=4000)
    # every row of a source is used before any is repeated
    first_a = [r for s, r in order if s == 0][:50]
    assert sorted(first_a) == list(range(50))


def test_epochs_repeat_rows():
    order = mixture_order([4, 10], [Source("a", epochs=2), Source("b", epochs=0.5)], seed=0)
    assert [r for s, r in order if s == 0] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert len([r for s, r in order if s == 1]) == 5


def test_two_local_sources_trained_as_one_dataset_with_a_report_per_source(tmp_path, sp_tokenizer_dir):
    from a3duck.models import load_tokenizer

    tok = load_tokenizer(str(sp_tokenizer_dir))
    a = write_jsonl(tmp_path / "a.jsonl", [{"instruction": f"Say {i}.", "output": str(i)}
                                           for i in range(30)])
    b = write_jsonl(tmp_path / "b.jsonl", [{"q": f"Echo {i}.", "r": f"{i}{i}"} for i in range(10)]
                    + [{"q": "", "r": "x"}])
    config = TrainConfig(data=[{"path": str(a), "weight": 0.75},
                               {"path": str(b), "weight": 0.25,
                                "columns": {"instruction": "q", "output": "r"}}],
                         skip_bad_rows=True, cutoff_len=64)
    ds, report, name = DS.prepare_dataset(config, tok)
    parts = report.to_dict()["sources"]
    assert name == "alpaca" and len(ds) == 40 == report.kept
    assert [(p["total_rows"], p["invalid_rows"], p["kept"]) for p in parts] == [(30, 0, 30),
                                                                                 (11, 1, 10)]
    assert sum(p["sampled"] for p in parts) == 40 and parts[0]["sampled"] > parts[1]["sampled"]
    assert "sampled" in report.summary() and str(b) in report.summary()
    # data_report.json names every source by its public name (no local path is published)
    recorded = report.to_dict()
    assert recorded["source"] == "a.jsonl, b.jsonl" and str(tmp_path) not in str(recorded)
    assert [p["source"] for p in parts] == ["a.jsonl", "b.jsonl"]
    assert parts[1]["invalid_row_numbers"] == [11]


def test_data_flag_is_one_string_though_a_recipe_may_give_a_list():
    import argparse

    from a3duck.commands.train import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["--data", "x.jsonl"]).data == "x.jsonl"
    with pytest.raises(SystemExit):  # one source on the command line; mixtures need a recipe
        parser.parse_args(["--data", "a.jsonl", "b.jsonl"])
