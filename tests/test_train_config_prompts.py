"""The recipe defaults and the Platypus/Alpaca template are exactly the published ones."""

import pytest

from a3duck.config import ConfigError, TrainConfig, from_dict, load_config, save_config
from a3duck.prompts import ALPACA, get_template, truncate_at_stop


def test_defaults_are_the_published_recipe():
    c = TrainConfig()
    assert (c.learning_rate, c.batch_size, c.micro_batch_size, c.warmup_steps) == (4e-4, 16, 1, 100)
    assert (c.num_epochs, c.weight_decay, c.lr_scheduler, c.cutoff_len) == (1.0, 0.0, "cosine", 4096)
    assert (c.train_on_inputs, c.group_by_length, c.add_eos_token) == (False, False, False)
    assert c.base_model == "meta-llama/Llama-2-13b-hf"
    assert c.data == "garage-bAInd/Open-Platypus"
    assert c.gradient_accumulation_steps == 16


def test_recipes_parse_and_13b_recipe_equals_defaults():
    full = load_config("recipes/a3duck-llama2-13b.yaml")
    # The default template is `auto`, which is alpaca on Open-Platypus; the recipe spells it out.
    assert full.to_dict() == TrainConfig(output_dir="out/a3duck-llama2-13b",
                                         prompt_template="alpaca").to_dict()
    demo = load_config("recipes/smollm2-demo.yaml")
    assert demo.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and demo.packing


def test_unknown_field_and_bad_values_are_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown field.*lr"):
        from_dict({"lr": 1})
    with pytest.raises(ConfigError, match="multiple of micro_batch_size"):
        TrainConfig(batch_size=10, micro_batch_size=3)
    save_config(TrainConfig(max_steps=3), tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml").max_steps == 3
    assert oct((tmp_path / "c.yaml").stat().st_mode & 0o777) == "0o644"


def test_alpaca_template_verbatim():
    assert ALPACA.render("Say hi.") == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:\n")
    assert ALPACA.render("Add.", "2 + 2") == (
        "Below is an instruction that describes a task, paired with an input that provides "
        "further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nAdd.\n\n### Input:\n2 + 2\n\n### Response:\n")
    assert get_template("alpaca") is ALPACA
    assert truncate_at_stop("4\n\n### Instruction:\nmore", ALPACA.stop_markers) == "4\n\n"
    with pytest.raises(ValueError, match="unknown prompt template"):
        get_template("vicuna")


def test_configuration_doc_is_generated_from_the_dataclass():
    from pathlib import Path

    from a3duck.config import describe_fields, reference_markdown

    assert all(f["reason"] for f in describe_fields()), "every field needs a one-line reason"
    doc = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    assert doc.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/configuration.md is stale: run `python -m a3duck.config > docs/configuration.md`")
