"""One home per decision: one generator for compare/chat/Space, one base and template default,
and a core that never imports the Space."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from adapter_factory import make_adapter

from a3duck import compare, models
from a3duck.config import CONFIG_FILENAME, TrainConfig
from a3duck.embedded import EMBEDDED_MODEL_ID

ROOT = Path(__file__).resolve().parents[1]
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


def test_base_and_template_defaults_live_in_models(adapter, tiny_llama_dir, tmp_path):
    assert models.base_of(None) == EMBEDDED_MODEL_ID
    assert models.base_of(adapter) == str(tiny_llama_dir)
    assert models.adapter_template(None) == TrainConfig().prompt_template == "alpaca"
    assert models.adapter_template(str(adapter)) == "alpaca"
    bare = tmp_path / "bare"  # a PEFT adapter a3duck did not train: no a3duck_config.yaml
    bare.mkdir()
    (bare / "adapter_config.json").write_text(json.dumps({"peft_type": "IA3"}))
    assert not (bare / CONFIG_FILENAME).exists()
    assert models.base_of(bare) == EMBEDDED_MODEL_ID
    assert models.adapter_template(str(bare)) == TrainConfig().prompt_template


def test_core_never_imports_the_space():
    code = ("import sys; import a3duck.generation, a3duck.compare, a3duck.models, a3duck.cli, "
            "a3duck.evaluation.runner, a3duck.publish.card; "
            "print([m for m in sys.modules if m.startswith('a3duck.space')])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
