"""Bad `a3duck eval` input fails with one clear error before any model work; a tiny
end-to-end run writes eval_results.json and prints the table."""

from __future__ import annotations

import json
import shutil

import pytest
from adapter_factory import make_adapter
from eval_support import small_data_dir

from a3duck.cli import main
from a3duck.evaluation import benchmarks as local_data
from a3duck.evaluation import runner
from a3duck.evaluation.benchmarks import BenchmarkDataError
from a3duck.evaluation.runner import EvalError, ModelSpec, parse_tasks, plan
from a3duck.models import AdapterMismatchError


@pytest.fixture()
def data(shared_data, tmp_path):
    return small_data_dir(shared_data, tmp_path / "bench")


def test_unknown_task():
    with pytest.raises(EvalError, match="unknown task winogrande; choose from arc_challenge"):
        parse_tasks("mmlu,winogrande")
    assert parse_tasks("truthfulqa_mc2,arc_challenge") == ["arc_challenge", "truthfulqa_mc2"]


def test_unknown_task_cli_exits_2(capsys):
    assert main(["eval", "--tasks", "gsm8k", "--data-dir", "/nonexistent"]) == 2
    assert "unknown task gsm8k" in capsys.readouterr().err


def test_missing_and_empty_data_dir(tmp_path):
    with pytest.raises(BenchmarkDataError, match="is not a folder"):
        local_data.prepare(tmp_path / "nope", ["mmlu"], tmp_path / "w")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchmarkDataError, match="none of mmlu, hellaswag found"):
        local_data.prepare(tmp_path / "empty", ["mmlu", "hellaswag"], tmp_path / "w")


def test_absent_benchmark_is_reported_not_faked(data, tmp_path):
    shutil.rmtree(data / "truthfulqa")
    prep = local_data.prepare(data, ["arc_challenge", "truthfulqa_mc2"], tmp_path / "w")
    assert list(prep.tasks) == ["arc_challenge"]
    assert "truthfulqa" in prep.missing["truthfulqa_mc2"]


def test_partial_mmlu_subject(data, tmp_path):
    (data / "mmlu" / "val" / "anatomy_val.csv").unlink()
    with pytest.raises(BenchmarkDataError, match="MMLU subject 'anatomy' is partial"):
        local_data.prepare(data, ["mmlu"], tmp_path / "w")


def test_arc_without_train_pool(data, tmp_path):
    (data / "arc" / "ARC-Challenge-Train.jsonl").unlink()
    with pytest.raises(BenchmarkDataError, match="ARC-Challenge-Train.jsonl is missing"):
        local_data.prepare(data, ["arc_challenge"], tmp_path / "w")


@pytest.mark.parametrize("rel,text,match", [
    ("arc/ARC-Challenge-Dev.jsonl", '{"id": "x", "question": {"stem": "q"}}\n',
     r"ARC-Challenge-Dev.jsonl:2: missing field 'choices'"),
    ("arc/ARC-Challenge-Dev.jsonl", "{not json\n", r"ARC-Challenge-Dev.jsonl:2: not JSON"),
    ("mmlu/val/astronomy_val.csv", "question,a,b,c,d,E\n", r"astronomy_val.csv:2: expected 6"),
    ("hellaswag/hellaswag_val_part1.jsonl",
     '{"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": ["d"]}\n',
     r"hellaswag_val_part1.jsonl:2: missing label"),
])
def test_malformed_row_names_file_and_line(data, tmp_path, rel, text, match):
    path = data / rel
    first = path.read_text(encoding="utf-8").splitlines(keepends=True)[0]
    path.write_text(first + text, encoding="utf-8")
    with pytest.raises(BenchmarkDataError, match=match):
        local_data.prepare(data, ["arc_challenge", "mmlu", "hellaswag"], tmp_path / "w")


def test_hub_tasks_offline_point_to_data_dir(tmp_path):
    with pytest.raises(EvalError, match="pass --data-dir"):
        plan(["truthfulqa_mc2"], None, tmp_path)


@pytest.fixture()
def other_base(tmp_path, sp_tokenizer_dir):
    """A Llama with other layer sizes than tiny_llama_dir."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    config = LlamaConfig(vocab_size=400, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "other")
    AutoTokenizer.from_pretrained(sp_tokenizer_dir).save_pretrained(tmp_path / "other")
    return tmp_path / "other"


def test_adapter_for_other_base_rejected_before_evaluation(
        data, tmp_path, tiny_llama_dir, other_base, monkeypatch):
    adapter = make_adapter(other_base, tmp_path / "adapter", base_id="someone/other-llama")
    p = plan(["truthfulqa_mc2"], data, tmp_path / "work")
    monkeypatch.setattr(runner, "evaluate", lambda *a, **k: pytest.fail("evaluation started"))
    spec = ModelSpec(base_model=str(tiny_llama_dir), adapters=[str(adapter)], backend="hf")
    with pytest.raises(AdapterMismatchError, match="someone/other-llama"):
        runner.run_suite(spec, p, limit=2)
    out = tmp_path / "r.json"
    assert main(["eval", "--base-model", str(tiny_llama_dir), "--adapter", str(adapter),
                 "--data-dir", str(data), "--tasks", "truthfulqa_mc2", "--output",
                 str(out)]) == 2
    assert not out.exists()


def test_tiny_end_to_end(data, tmp_path, tiny_llama_dir, capsys):
    adapter = make_adapter(tiny_llama_dir, tmp_path / "out" / "adapter",
                           base_id=str(tiny_llama_dir))
    assert main(["eval", "--adapter", str(adapter), "--base-model", str(tiny_llama_dir),
                 "--data-dir", str(data), "--tasks", "truthfulqa_mc2,mmlu", "--limit", "2",
                 "--batch-size", "4"]) == 0
    doc = json.loads((tmp_path / "out" / "eval_results.json").read_text())
    assert doc["adapter"] == "adapter" and "/" not in doc["base_model"]  # no local paths
    got = {(r["model"], r["task"]): r for r in doc["results"]}
    assert set(got) == {(m, t) for m in ("base", "adapter") for t in ("mmlu", "truthfulqa_mc2")}
    assert got["base", "mmlu"]["n_docs"] == 4 and got["base", "mmlu"]["limited"]
    assert got["base", "truthfulqa_mc2"]["value"] != got["adapter", "truthfulqa_mc2"]["value"]
    assert doc["details"]["base"]["mmlu"]["n_subjects"] == 2
    prov = got["adapter", "mmlu"]["provenance"]
    assert (prov["backend"], prov["dtype"], prov["batch_size"], prov["limit"], prov["partial"],
            prov["n_docs"]) == ("a3duck", "float32", 4, 2, True, 4)
    assert prov["data"]["kind"] == "local" and len(prov["data"]["files"]) == 4  # dev+val x 2
    tokens = doc["tokens_read"]["base"]["mmlu"]
    assert 0 < tokens["read"] <= tokens["plain"]  # the tiny model truncates these contexts
    table = capsys.readouterr().out
    assert "TruthfulQA*" in table and "Delta" in table
