"""One home per decision: one generator for compare/chat/Space, one base and template default
(the adapter folder module). The import layering is tests/test_project_import_contract.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from adapter_factory import make_adapter

from a3duck import adapter_folder, compare
from a3duck.adapter_folder import TRAIN_CONFIG
from a3duck.config import TrainConfig
from a3duck.embedded import EMBEDDED_MODEL_ID

PROMPTS = ["Name a colour.", "Write one word.", "### Response: twice?"]


@pytest.fixture(scope="module")
def adapter(tiny_llama_dir, tmp_path_factory) -> Path:
    return make_adapter(tiny_llama_dir, tmp_path_factory.mktemp("one") / "adapter")


@torch.inference_mode()
def _plain_greedy(model, tokenizer, prompt, template, max_new_tokens, use_adapter):
    """compare.generate_answer as it was before it used the shared generator: the reference."""
    from contextlib import nullcontext

    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
    toggle = nullcontext() if use_adapter else model.disable_adapter()
    with toggle:
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    text = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    return template.response_of(text)


def test_compare_answers_equal_plain_greedy_generate(adapter):
    model, tokenizer, template = compare.load_for_compare(str(adapter))
    answers = set()
    for text in PROMPTS:
        prompt = template.render(text)
        for use_adapter in (True, False):
            got = compare.generate_answer(model, tokenizer, prompt, template, 12, use_adapter)
            assert got == _plain_greedy(model, tokenizer, prompt, template, 12, use_adapter)
            answers.add(got)
    assert len(answers) > 1  # real, differing generations were compared


def test_base_and_template_defaults_live_in_the_adapter_folder(adapter, tiny_llama_dir, tmp_path):
    assert adapter_folder.base_of(None) == EMBEDDED_MODEL_ID
    assert adapter_folder.base_of(adapter) == str(tiny_llama_dir)
    # the recipe default is "auto" (picked per data set at train time, never recorded); with no
    # adapter, or an adapter a3duck did not train, it means alpaca
    assert TrainConfig().prompt_template == "auto"
    assert adapter_folder.template(None) == "alpaca"
    assert adapter_folder.template(adapter) == "alpaca"
    bare = tmp_path / "bare"  # a PEFT adapter a3duck did not train: no a3duck_config.yaml
    bare.mkdir()
    (bare / "adapter_config.json").write_text(json.dumps({"peft_type": "IA3"}))
    assert not (bare / TRAIN_CONFIG).exists()
    assert adapter_folder.base_of(bare) == EMBEDDED_MODEL_ID
    assert adapter_folder.template(bare) == "alpaca"
