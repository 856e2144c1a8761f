"""The card's statements follow the adapter's recorded facts: an alpaca-template adapter and a
chat-template adapter each get their own prompt sentences (English and Korean)."""

from __future__ import annotations

import shutil

import pytest
import yaml
from adapter_factory import make_adapter

from a3duck.adapter_folder import TRAIN_CONFIG
from a3duck.publish import card as card_mod


@pytest.fixture(scope="module")
def adapters(tiny_llama_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("statements")
    alpaca = make_adapter(tiny_llama_dir, work / "alpaca", base_id="test-org/tiny-llama")
    chat = work / "chat"
    shutil.copytree(alpaca, chat)
    config = yaml.safe_load((chat / TRAIN_CONFIG).read_text())
    config["prompt_template"] = "chat"
    (chat / TRAIN_CONFIG).write_text(yaml.safe_dump(config))
    return {"alpaca": alpaca, "chat": chat}


ALPACA = "Prompts follow the Alpaca template"
CHAT = "Prompts follow the base model's own chat template"


@pytest.mark.parametrize("template", ["alpaca", "chat"])
def test_prompt_statement_is_the_recorded_template(adapters, template):
    text = str(card_mod.render_card(adapters[template]))
    assert (CHAT in text) == (template == "chat") and (ALPACA in text) == (template == "alpaca")
    trained = "formatted with the base model's own chat template" in text
    assert trained == (template == "chat")
    ko = str(card_mod.render_card(adapters[template], lang="ko"))
    assert ("채팅 템플릿(`tokenizer.apply_chat_template`)을 따릅니다" in ko) == (template == "chat")
