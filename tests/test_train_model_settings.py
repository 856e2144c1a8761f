"""Model-dependent settings (issue 24, class 2): checked from the base's config.json alone
(a3duck.model_checks), before data or weights load; empty strings refused as paths and names."""

from __future__ import annotations

import json
import shutil

import pytest

from a3duck import model_checks
from a3duck.cli import main
from a3duck.config import TrainConfig
from a3duck.errors import ConfigError, ModelError


def _train(tiny_llama_dir, tmp_path, *extra):
    # The data file does not exist: a message about it would mean the data was read first.
    return main(["train", "--base-model", str(tiny_llama_dir), "--data",
                 str(tmp_path / "missing.jsonl"), "--output-dir", str(tmp_path / "out"),
                 "--max-steps", "1", "--device", "cpu", *extra])


@pytest.mark.parametrize(("extra", "says"), [
    (["--target-modules", "k_proj", "v_prj", "down_proj"],
     "target_modules: 'v_prj' matches no module of this model; did you mean 'v_proj'?"),
    (["--target-modules", "k_proj", "v_proj", "--feedforward-modules", "down_proj"],
     "feedforward_modules: down_proj must also be in target_modules (k_proj, v_proj)"),
    (["--feedforward-modules", "up_prj"], ("'up_prj' matches no module of this model; did you "
     "mean 'up_proj'?")),
    (["--cutoff-len", "100000"], ("cutoff_len: 100000 tokens is longer than the model's context "
     "window (512); use --cutoff-len 512 or less")),
])
def test_model_settings_are_checked_before_data_and_weights(tiny_llama_dir, tmp_path, capsys,
                                                            extra, says):
    assert _train(tiny_llama_dir, tmp_path, *extra) == 2
    err = capsys.readouterr().err
    assert says in err
    assert "missing.jsonl" not in err and "Traceback" not in err


def test_defaults_pass_on_a_llama(tiny_llama_dir):
    cfg = TrainConfig(base_model=str(tiny_llama_dir), cutoff_len=512)
    model_checks.check_model_settings(cfg, str(tiny_llama_dir))  # no error
    names = model_checks.linear_layers(model_checks.read_model_config(str(tiny_llama_dir)))
    assert "model.layers.1.mlp.down_proj" in names


def test_unknown_model_type_is_named(tiny_llama_dir, tmp_path):
    folder = tmp_path / "odd"
    shutil.copytree(tiny_llama_dir, folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "model_type": "duckformer"}))
    with pytest.raises(ModelError, match=r"base model .*odd: its config.json is not an "
                       r"architecture transformers .* knows"):
        model_checks.check_model_settings(TrainConfig(base_model=str(folder)), str(folder))


@pytest.mark.parametrize("argv", [
    ["train", "--output-dir", ""], ["train", "--data", ""], ["train", "--data="],
    ["mix", "--adapter", "x", "--output-dir", " "], ["eval", "--output", ""], ["inspect", ""],
])
def test_empty_strings_are_refused_as_paths_and_names(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "is empty: give a file, folder, Hub id or value" in capsys.readouterr().err


def test_empty_recipe_paths_are_refused():
    for field in ("output_dir", "data", "base_model"):
        with pytest.raises(ConfigError, match=f"{field}: must not be empty"):
            TrainConfig(**{field: ""})


def test_empty_a3duck_home_is_refused(monkeypatch):
    from a3duck import embedded

    monkeypatch.setenv("A3DUCK_HOME", "")
    with pytest.raises(ConfigError, match="A3DUCK_HOME is set but empty"):
        embedded.model_dir()


@pytest.mark.parametrize("value", [",, ,", "a,,b", ["x", ""]])
def test_adapter_list_with_empty_names_is_refused(value):
    from a3duck.space.zoo import adapter_specs

    with pytest.raises(ConfigError, match="has an empty name"):
        adapter_specs(value)
    assert adapter_specs("none") == [] and adapter_specs(None) == []
    assert adapter_specs("a, b") == ["a", "b"]
