"""`a3duck eval --adapter A --adapter B`: the base loaded once, base and each adapter evaluated,
one table; the numbers equal separate single-adapter runs."""

from __future__ import annotations

import json

import pytest
import torch
from adapter_factory import make_adapter
from eval_support import small_data_dir

from a3duck.adapter_folder import weights_sha256
from a3duck.cli import main
from a3duck.publish.card_results import load_eval_results


def _second_adapter(tiny_llama_dir, out):
    """Another adapter of the same base: the first's layout, different vectors."""
    from safetensors.torch import load_file, save_file

    path = make_adapter(tiny_llama_dir, out, base_id=str(tiny_llama_dir))
    weights = load_file(path / "adapter_model.safetensors")
    torch.manual_seed(7)
    save_file({k: v * (0.5 + torch.rand_like(v)) for k, v in weights.items()},
              str(path / "adapter_model.safetensors"))
    return path


def _rows(path):
    return {(r["model"], r["task"]): r["value"] for r in json.loads(path.read_text())["results"]}


def test_two_adapters_in_one_run_equal_separate_runs(shared_data, tmp_path, tiny_llama_dir,
                                                      capsys):
    data = small_data_dir(shared_data, tmp_path / "bench", subjects=())
    # both folders are called `adapter` (what `a3duck train` writes): the first is named by its
    # run folder, the second by NAME= ("half" is also an nn.Module method: a label must never
    # become PEFT's adapter name)
    first = make_adapter(tiny_llama_dir, tmp_path / "ia3-a" / "adapter",
                         base_id=str(tiny_llama_dir))
    second = _second_adapter(tiny_llama_dir, tmp_path / "two" / "adapter")
    common = ["--base-model", str(tiny_llama_dir), "--data-dir", str(data), "--tasks",
              "truthfulqa_mc2", "--limit", "3", "--batch-size", "3"]
    both = tmp_path / "both.json"
    assert main(["eval", "--adapter", str(first), "--adapter", f"half={second}", *common,
                 "--output", str(both)]) == 0
    table = capsys.readouterr().out.split("\n\ntokens read")[0].strip().splitlines()
    assert [line.split()[0] for line in table[2:5]] == ["base", "ia3-a", "half"]
    assert len(table) == 6 and table[5].startswith("*")  # header, rule, three rows, footnote
    together = _rows(both)
    doc = json.loads(both.read_text())
    assert doc["adapters"] == {"ia3-a": "adapter", "half": "adapter"}
    assert doc["adapter_sha256"] == {"ia3-a": weights_sha256(first),
                                     "half": weights_sha256(second)}
    # the card takes each adapter's rows by the hash of its weights, not by its folder's name
    for folder, label in ((first, "ia3-a"), (second, "half")):
        picked = load_eval_results(both, folder, str(tiny_llama_dir))
        assert {(r["model"], r["value"]) for r in picked["results"] if r["model"] == "adapter"} \
            == {("adapter", together[label, "truthfulqa_mc2"])}
    # the second adapter is the one swapped in place of the first: run it alone
    single = tmp_path / "half.json"
    assert main(["eval", "--adapter", str(second), *common, "--output", str(single)]) == 0
    alone = _rows(single)
    assert together["half", "truthfulqa_mc2"] == pytest.approx(alone["adapter", "truthfulqa_mc2"],
                                                                abs=1e-6)
    assert together["base", "truthfulqa_mc2"] == pytest.approx(alone["base", "truthfulqa_mc2"],
                                                               abs=1e-6)
    assert together["ia3-a", "truthfulqa_mc2"] != together["half", "truthfulqa_mc2"]
