"""`a3duck train`: flags generated from TrainConfig, and one validation pass that reports every
problem (exit 2, no traceback) before any model or data work."""

import logging
import math
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import repeat_rows, write_jsonl

from a3duck import models
from a3duck.adapter_folder import TRAIN_CONFIG
from a3duck.cli import main
from a3duck.config import ConfigError, TrainConfig, from_dict, load_config, resolve
from a3duck.config_checks import coerce

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_model_work(monkeypatch):
    """Every case here must fail before a base model is even looked up."""
    monkeypatch.setattr(models, "resolve_base_model",
                        lambda *a, **k: pytest.fail("a base model was looked up"))
    levels = {n: logging.getLogger(n).level for n in ("", "a3duck")}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def recipe(tmp_path, text: str | bytes) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def train(tmp_path, capsys, *args: str) -> tuple[int, str]:
    code = main(["train", "--base-model", str(tmp_path / "no-such-model"), "--data",
                 str(tmp_path / "no-such-data.jsonl"), "--output-dir", str(tmp_path / "run"),
                 *args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_help_lists_every_field(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        assert flag in out, flag
        if f.type == "bool":
            assert f"--no-{f.name.replace('_', '-')}" in out
    for kept in ("--recipe", "--resume", "--skip-bad-rows", "--packing", "--no-packing",
                 "--load-in-4bit", "--load-in-8bit"):
        assert kept in out


def test_every_field_can_be_set_from_the_command_line():
    import argparse

    from a3duck.commands import train as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args([
        "--warmup-steps", "7", "--lr-scheduler", "linear", "--weight-decay", "0.1",
        "--gradient-checkpointing", "--no-packing", "--prompt-template", "alpaca",
        "--target-modules", "q_proj", "v_proj", "--too-long", "drop", "--learning-rate", "4e-4",
        "--max-steps", "3", "--load-in-8bit"])
    config = resolve("recipes/smollm2-demo.yaml",
                     {f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    assert (config.warmup_steps, config.lr_scheduler, config.weight_decay) == (7, "linear", 0.1)
    assert config.gradient_checkpointing is True and config.packing is False
    assert config.target_modules == ["q_proj", "v_proj"] and config.too_long == "drop"
    assert (config.learning_rate, config.max_steps, config.quantization) == (4e-4, 3, "8bit")
    assert config.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"  # from the recipe


def test_vicuna_and_fast_one_message_naming_both(tmp_path, capsys):
    bad = recipe(tmp_path, "prompt_template: vicuna\nlearning_rate: fast\n")
    code, err = train(tmp_path, capsys, "--recipe", bad)
    assert code == 2 and err.count("error:") == 1
    assert "2 problems" in err and "prompt_template: unknown prompt template 'vicuna'" in err
    assert "learning_rate: expected a number, got 'fast'" in err


@pytest.mark.slow  # spawns a subprocess
def test_vicuna_and_fast_from_a_shell(tmp_path):
    bad = recipe(tmp_path, "prompt_template: vicuna\nlearning_rate: fast\n")
    proc = subprocess.run([sys.executable, "-m", "a3duck", "train", "--recipe", bad,
                           "--base-model", str(tmp_path / "absent")], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "prompt_template" in proc.stderr and "learning_rate" in proc.stderr
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize(("text", "args", "message"), [
    ("max_steps: -5\n", [], "max_steps: must be -1 (train num_epochs) or a positive"),
    ("learning_rate: .nan\n", [], "learning_rate: must be a finite number > 0, got nan"),
    ("", ["--learning-rate", "inf"], "learning_rate (--learning-rate): must be a finite"),
    ("lr_scheduler: cosine_annealing\n", [], "unknown lr scheduler 'cosine_annealing'"),
    ("batch_size: 10\nmicro_batch_size: 3\n", [], "batch_size: must be a multiple of micro"),
    ("lr: 1\nbatch_size: many\n", [], "lr: unknown field"),
    ("packing: maybe\n", [], "packing: expected true or false, got 'maybe'"),
    ("precision: fp16\n", [], "precision: must be one of auto, bf16, fp32; got 'fp16'"),
    ("device: tpu\n", [], "device: must be auto, cpu, cuda or mps"),
    ("learning_rate: [1, 2\n", [], "invalid YAML at line 2"),
    (b"data_split: \xff\xfe\n", [], "not UTF-8 text"),
    ("- a list\n", [], "a recipe must be a YAML mapping"),
])
def test_recipe_problems_exit_2_before_any_model(tmp_path, capsys, text, args, message):
    code, err = train(tmp_path, capsys, "--recipe", recipe(tmp_path, text), *args)
    assert code == 2 and message in err, err


def test_several_problems_of_recipe_and_flags_at_once(tmp_path, capsys):
    bad = recipe(tmp_path, "lr: 1\nbatch_size: many\nmax_steps: -5\n")
    code, err = train(tmp_path, capsys, "--recipe", bad, "--cutoff-len", "4",
                      "--lr-scheduler", "nope")
    assert code == 2 and "5 problems" in err
    for part in ("lr: unknown field", "batch_size: expected a whole number, got 'many'",
                 "max_steps: must be", "cutoff_len (--cutoff-len): must be >= 8 tokens",
                 "lr_scheduler (--lr-scheduler): unknown lr scheduler 'nope'"):
        assert part in err, part


def test_yaml_values_are_read_the_way_a_user_means_them(tmp_path):
    config = load_config(recipe(tmp_path, "learning_rate: 4e-4\nmax_steps: '8'\n"
                                "packing: 'yes'\ntarget_modules: q_proj, v_proj\n"))
    assert config.learning_rate == 4e-4 and isinstance(config.learning_rate, float)
    assert config.max_steps == 8 and config.packing is True
    assert config.target_modules == ["q_proj", "v_proj"]
    assert math.isclose(TrainConfig(learning_rate="3e-2").learning_rate, 0.03)
    with pytest.raises(ConfigError, match="warmup_steps: must be >= 0"):
        from_dict({"warmup_steps": -1})


def test_data_may_be_text_or_a_list_of_mappings():
    kind = str | list[dict[str, Any]]
    assert coerce("a.jsonl", kind) == "a.jsonl"
    sources = [{"path": "a.jsonl", "weight": 2}, {"path": "b.jsonl"}]
    assert coerce(sources, kind) == sources
    with pytest.raises(ValueError, match=r"expected text or a list of mappings, got \[1, 2\]"):
        coerce([1, 2], kind)


def test_output_dir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "run").write_text("not a folder")
    code, err = train(tmp_path, capsys, "--device", "cpu")
    assert code == 2 and f"output_dir: {tmp_path / 'run'} is a file" in err


def test_cuda_on_a_host_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU-only message")
    code, err = train(tmp_path, capsys, "--device", "cuda")
    assert code == 2 and "no usable CUDA GPU" in err and "--device cpu" in err


def checkpoints_made_with(tmp_path, **settings) -> Path:
    checkpoints = tmp_path / "run" / "checkpoints"
    (checkpoints / "checkpoint-4").mkdir(parents=True)
    made = TrainConfig(**{"base_model": str(tmp_path / "no-such-model"), "device": "cpu",
                          "output_dir": str(tmp_path / "run"),
                          "data": str(tmp_path / "no-such-data.jsonl"), **settings})
    (checkpoints / TRAIN_CONFIG).write_text(yaml.safe_dump(made.to_dict()))
    return checkpoints


def test_resume_with_other_data_is_refused(tmp_path, capsys):
    checkpoints_made_with(tmp_path, data=str(tmp_path / "first.jsonl"), learning_rate=0.01)
    code, err = train(tmp_path, capsys, "--resume", "--device", "cpu", "--save-steps", "5")
    assert code == 2 and "--resume: the checkpoints in" in err
    assert f"data '{tmp_path / 'first.jsonl'}' -> '{tmp_path / 'no-such-data.jsonl'}'" in err
    assert "learning_rate 0.01 -> 0.0004" in err
    assert "save_steps" not in err  # the checkpoint interval may change


def test_resume_with_another_length_says_what_it_does_or_refuses(tmp_path, capsys, caplog):
    from a3duck.train import check_resume_config

    checkpoints = checkpoints_made_with(tmp_path, max_steps=20)
    code, err = train(tmp_path, capsys, "--resume", "--max-steps", "3", "--device", "cpu")
    assert code == 2 and "newest checkpoint is at step 4; max_steps 3 leaves nothing" in err
    longer = TrainConfig(base_model=str(tmp_path / "no-such-model"), device="cpu",
                         output_dir=str(tmp_path / "run"), data=str(tmp_path / "no-such-data.jsonl"),
                         max_steps=40)
    with caplog.at_level(logging.WARNING, logger="a3duck"):
        check_resume_config(checkpoints, longer)
    assert "new run length (max_steps 20 -> 40): continuing from step 4" in caplog.text


@pytest.mark.slow  # spawns a subprocess
def test_quiet_by_default_a3duck_lines_only(tiny_llama_dir, tmp_path):
    """A real (tiny) run: a3duck's own step lines and result, none of the libraries' warnings."""
    data = write_jsonl(tmp_path / "rows.jsonl", repeat_rows(8))
    proc = subprocess.run(
        [sys.executable, "-m", "a3duck", "train", "--base-model", str(tiny_llama_dir), "--data",
         str(data), "--output-dir", str(tmp_path / "run"), "--max-steps", "2", "--batch-size",
         "2", "--micro-batch-size", "2", "--cutoff-len", "128", "--device", "cpu",
         "--warmup-steps", "0", "--save-steps", "2"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(tmp_path / "run" / "adapter")
    assert "a3duck.train: step 2/2 loss" in proc.stderr
    for noise in ("Warning", "warn(", "Could not find a config file", "transformers"):
        assert noise not in proc.stderr, proc.stderr[-3000:]
