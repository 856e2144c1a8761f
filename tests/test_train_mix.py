"""`a3duck mix`: exact adapter arithmetic, checked against PEFT itself (tiny Llama)."""

from __future__ import annotations

import pytest
import torch
import yaml
from multi_support import peft_model, random_adapter

from a3duck.adapter_folder import ADAPTER_WEIGHTS
from a3duck.adapter_folder import tensors as load_raw
from a3duck.cli import main
from a3duck.errors import AdapterMismatchError, ConfigError
from a3duck.mix import mix_adapters

IDS = torch.tensor([[1, 20, 30, 40, 50, 60]])


@pytest.fixture(scope="module")
def pair(tiny_llama_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("mix")
    return (random_adapter(tiny_llama_dir, work / "a", seed=11),
            random_adapter(tiny_llama_dir, work / "b", seed=12))


def logits(model):
    with torch.inference_mode():
        return model(input_ids=IDS).logits


def test_one_adapter_with_weight_one_is_itself(tiny_llama_dir, pair, tmp_path):
    out = mix_adapters([f"{pair[0]}:1"], tmp_path / "same")
    for key, value in load_raw(pair[0]).items():
        assert torch.equal(load_raw(out)[key], value)
    torch.testing.assert_close(logits(peft_model(tiny_llama_dir, out)),
                               logits(peft_model(tiny_llama_dir, pair[0])), rtol=0, atol=0)


def test_multiplicative_mix_is_the_adapters_applied_one_after_the_other(tiny_llama_dir, pair,
                                                                        tmp_path):
    a, b = pair
    assert main(["mix", "--adapter", str(a), "--adapter", str(b), "--output-dir",
                 str(tmp_path / "ab")]) == 0
    # PEFT itself with both adapters active multiplies their scales in every layer
    stacked = peft_model(tiny_llama_dir, a)
    stacked.load_adapter(str(b), adapter_name="b")
    stacked.base_model.set_adapter(["default", "b"])
    mixed = peft_model(tiny_llama_dir, tmp_path / "ab")
    assert (logits(mixed) - logits(stacked)).abs().max() <= 1e-5
    va, vb, vm = load_raw(a), load_raw(b), load_raw(tmp_path / "ab")
    for key in va:
        torch.testing.assert_close(vm[key], va[key] * vb[key], rtol=1e-6, atol=0)
    record = yaml.safe_load((tmp_path / "ab" / "a3duck_config.yaml").read_text())
    assert record["mix"]["mode"] == "multiplicative"
    assert [s["weight"] for s in record["mix"]["sources"]] == [1.0, 1.0]
    assert all(len(s["sha256"]) == 64 for s in record["mix"]["sources"])
    card = (tmp_path / "ab" / "README.md").read_text()
    assert "A mix of adapters" in card and "multiplicative" in card
    from a3duck.adapter_folder import train_config

    assert train_config(tmp_path / "ab").prompt_template == "alpaca"


def test_weights_are_exponents_and_linear_is_peft_weighted_sum(tiny_llama_dir, pair, tmp_path):
    a, b = pair
    out = mix_adapters([f"{a}:2", f"{b}:0.5"], tmp_path / "pow")
    va, vb, vm = load_raw(a), load_raw(b), load_raw(out)
    for key in va:
        expected = (va[key].double() ** 2 * vb[key].double() ** 0.5).float()
        assert torch.equal(vm[key], expected)
    lin = mix_adapters([str(a), str(b)], tmp_path / "lin", mode="linear")
    ref = peft_model(tiny_llama_dir, a)
    ref.load_adapter(str(b), adapter_name="b")
    ref.add_weighted_adapter(["default", "b"], [0.5, 0.5], "avg")
    peft_vectors = {n: p for n, p in ref.named_parameters() if n.endswith("ia3_l.avg")}
    vl = load_raw(lin)
    assert len(peft_vectors) == len(vl)
    for name, value in peft_vectors.items():
        key = name.removesuffix(".avg")
        torch.testing.assert_close(vl[key], value.detach(), rtol=1e-6, atol=1e-7)
    assert yaml.safe_load((lin / "a3duck_config.yaml").read_text())["mix"]["sources"][0][
        "weight"] == 0.5


def test_different_bases_or_modules_are_refused(tiny_llama_dir, pair, tmp_path):
    other_base = random_adapter(tiny_llama_dir, tmp_path / "o", seed=13, base_id="x/other")
    with pytest.raises(AdapterMismatchError, match="different bases"):
        mix_adapters([str(pair[0]), str(other_base)], tmp_path / "bad")
    other_modules = random_adapter(tiny_llama_dir, tmp_path / "q", seed=14,
                                   target_modules=["q_proj", "v_proj"], feedforward_modules=[])
    with pytest.raises(AdapterMismatchError, match="different modules"):
        mix_adapters([str(pair[0]), str(other_modules)], tmp_path / "bad")
    with pytest.raises(ConfigError, match="already exists"):
        mix_adapters([str(pair[0])], tmp_path / "o")
    assert not (tmp_path / "bad").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # nothing half-written


def test_mix_of_a_corrupt_adapter_says_what_inspect_says(pair, tmp_path, capsys):
    """mix reads weights through the adapter folder's one reader: a truncated file is the same
    clean message (exit 2, no traceback) as `a3duck inspect` gives, and nothing is written."""
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(pair[0], damaged)
    weights = damaged / ADAPTER_WEIGHTS
    weights.write_bytes(weights.read_bytes()[:40])
    messages = []
    mix = ["mix", "--adapter", str(damaged), "--adapter", str(pair[1]), "--output-dir",
           str(tmp_path / "out")]
    for argv in (mix, ["inspect", str(damaged), "--output-dir", str(tmp_path / "i")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "SafetensorError" in err
        messages.append(next(line for line in err.splitlines() if "corrupt or truncated" in line))
    assert messages[0] == messages[1]
    assert f"adapter file {weights} is corrupt or truncated" in messages[0]
    assert not (tmp_path / "out").exists()
