"""Numbers (issue 24, class 1): one rule for every numeric input (a3duck.limits) — finite, in
range, named — before any work; results that would not be finite or fit in memory are refused;
no adapter with a non-finite vector is written or loaded."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from adapter_factory import make_adapter
from safetensors.torch import load_file, save_file

from a3duck import adapter_folder as af
from a3duck import limits
from a3duck.cli import main
from a3duck.config import TrainConfig
from a3duck.errors import ConfigError, InputError, ModelError
from a3duck.generation import Settings
from a3duck.sources import mixture_order, parse_sources


@pytest.fixture(scope="module")
def adapter(tiny_llama_dir, tmp_path_factory):
    return make_adapter(tiny_llama_dir, tmp_path_factory.mktemp("adapter") / "a",
                        base_id="org/tiny")


@pytest.fixture
def nan_adapter(adapter, tmp_path):
    out = tmp_path / "nan"
    shutil.copytree(adapter, out)
    weights = out / af.ADAPTER_WEIGHTS
    tensors = load_file(str(weights))
    key = min(tensors)
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_file(tensors, str(weights))
    return out


def test_the_rule_names_the_parameter_and_refuses_non_finite():
    assert limits.number_problem(float("nan")) == "must be a finite number, got nan"
    assert "at most 10" in limits.number_problem(11, high=10)
    assert "> 0" in limits.number_problem(0, low=0, above=True)
    with pytest.raises(ConfigError, match=r"^weight must be a finite number, got inf"):
        limits.check_number("weight", "inf")
    assert limits.check_number("n", "12", integer=True) == 12


@pytest.mark.parametrize(("field", "value", "says"), [
    ("learning_rate", "nan", "finite"), ("num_epochs", "1e12", "at most 10,000"),
    ("warmup_steps", 1e300, "between -1,000,000,000 and 1,000,000,000"), ("max_grad_norm", "inf", "finite"),
    ("cutoff_len", 10**12, "between"),
])
def test_recipe_numbers_are_finite_and_bounded(field, value, says):
    with pytest.raises(ConfigError, match=rf"{field}: .*{says}"):
        TrainConfig(**{field: value})


@pytest.mark.parametrize(("item", "says"), [
    ({"path": "a.jsonl", "weight": float("nan")}, "weight must be a finite number"),
    ({"path": "a.jsonl", "weight": float("inf")}, "weight must be a finite number"),
    ({"path": "a.jsonl", "epochs": float("inf")}, "epochs must be a finite number"),
    ({"path": "a.jsonl", "epochs": 1e12}, "epochs must be at most 10,000"),
    ({"path": "a.jsonl", "weight": 0}, "weight must be > 0"),
])
def test_mixture_weights_and_epochs(item, says):
    with pytest.raises(ConfigError, match=says):
        parse_sources([item, {"path": "b.jsonl", **{k: 1 for k in item if k != "path"}}])


def test_mixture_that_would_not_fit_in_memory_is_refused():
    sources = parse_sources([{"path": "a.jsonl", "epochs": 5000}])
    with pytest.raises(ConfigError, match="at most 20,000,000 fit in memory"):
        mixture_order([10_000], sources, seed=0)
    with pytest.raises(ConfigError, match="weights add up"):
        parse_sources([{"path": "a", "weight": 1.5e308}, {"path": "b", "weight": 1.5e308}])


@pytest.mark.parametrize("value", ["inf", float("nan"), 10**6, "3.5", None])
def test_space_parameters_are_named(value):
    with pytest.raises(InputError, match=r"^max_new_tokens must be"):
        Settings.checked(max_new_tokens=value)
    assert Settings.checked(max_new_tokens=256.0).max_new_tokens == 256


@pytest.mark.parametrize(("argv", "says"), [
    (["eval", "--limit", "100000000000000000000"], "--limit: must be between 1 and 1,000,000,000"),
    (["eval", "--limit", "0"], "--limit: must be between 1"),
    (["compare", "--adapter", "x", "--max-new-tokens", "-3"], "--max-new-tokens: must be between 1"),
    (["check-contamination", "--data", "x", "--threshold", "nan"], "--threshold: must be a finite"),
    (["serve", "--port", "70000"], "--port: must be between 1 and 65,535"),
])
def test_numeric_flags_follow_the_rule_before_any_work(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("spec", ["{a}:nan", "{a}:inf", "{a}:-inf"])
@pytest.mark.parametrize("mode", ["linear", "multiplicative"])
def test_mix_weights_must_be_finite(adapter, tmp_path, capsys, spec, mode):
    out = tmp_path / "mixed"
    code = main(["mix", "--mode", mode, "--adapter", spec.format(a=adapter),
                 "--output-dir", str(out)])
    assert code == 2
    assert "the weight must be a finite number" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("mode", ["linear", "multiplicative"])
def test_mix_whose_result_is_not_finite_is_refused(adapter, tmp_path, capsys, mode):
    out = tmp_path / "mixed"
    code = main(["mix", "--mode", mode, "--adapter", f"{adapter}:1e308",
                 "--output-dir", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "is not finite" in err and "use smaller weights" in err
    assert not out.exists()


def test_mix_with_a_fine_weight_writes_finite_vectors(adapter, tmp_path):
    out = tmp_path / "mixed"
    assert main(["mix", "--mode", "linear", "--adapter", f"{adapter}:2.0",
                 "--output-dir", str(out)]) == 0
    mixed = af.tensors(out)
    assert all(bool(torch.isfinite(t).all()) for t in mixed.values())
    src = af.tensors(adapter)
    key = min(src)
    assert torch.allclose(mixed[key], 2.0 * src[key])


def test_a_nan_adapter_is_never_loaded(nan_adapter, tmp_path, capsys):
    with pytest.raises(ModelError, match=r"holds non-finite values \(\d+ NaN value"):
        af.tensors(nan_adapter)
    for argv in (["inspect", str(nan_adapter), "--output-dir", str(tmp_path / "p")],
                 ["mix", "--adapter", str(nan_adapter), "--output-dir", str(tmp_path / "m")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"adapter file {nan_adapter / af.ADAPTER_WEIGHTS} holds non-finite" in err
        assert "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_require_finite_when_writing_names_the_target():
    with pytest.raises(ModelError, match=r"refusing to write out/adapter: .*\(1 infinite"):
        limits.require_finite({"k": torch.tensor([1.0, math.inf])}, "out/adapter", writing=True)
    limits.require_finite({"k": torch.ones(3), "i": torch.arange(3)}, "x")  # fine: no error
