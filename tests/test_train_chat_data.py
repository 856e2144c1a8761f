"""Conversational data trains on the embedded SmolLM2 with its chat template (tiny step counts)."""

import json

import pytest
import yaml
from conftest import write_jsonl

from a3duck.config import TrainConfig
from a3duck.train import train

pytestmark = pytest.mark.slow

TURNS = [("What is the capital of Peru?", "The capital of Peru is **Lima**."),
         ("And of Chile?", "The capital of Chile is **Santiago**.")]


def messages_row(i):
    turns = []
    for q, a in TURNS:
        turns += [{"role": "user", "content": f"{q} ({i})"}, {"role": "assistant", "content": a}]
    return {"messages": turns}


def sharegpt_row(i):
    turns = []
    for q, a in TURNS:
        turns += [{"from": "human", "value": f"{q} ({i})"}, {"from": "gpt", "value": a}]
    return {"conversations": [{"from": "system", "value": "Answer in one sentence."}, *turns]}


@pytest.mark.parametrize("make_row", [messages_row, sharegpt_row], ids=["messages", "sharegpt"])
def test_multi_turn_jsonl_trains_with_the_chat_template(embedded_model_dir, tmp_path, make_row):
    data = write_jsonl(tmp_path / "chat.jsonl", [make_row(i) for i in range(4)])
    config = TrainConfig(base_model=str(embedded_model_dir), data=str(data),
                         output_dir=str(tmp_path / "run"), max_steps=1, batch_size=2,
                         micro_batch_size=2, cutoff_len=128, learning_rate=1e-2, warmup_steps=0,
                         save_steps=10, precision="fp32", device="cpu", packing=True)
    adapter = train(config)
    recorded = yaml.safe_load((adapter / "a3duck_config.yaml").read_text())
    assert recorded["prompt_template"] == "chat"  # auto, resolved and recorded
    report = json.loads((adapter / "data_report.json").read_text())
    assert (report["total_rows"], report["kept"], report["invalid_rows"]) == (4, 4, 0)
    metrics = json.loads((adapter / "train_metrics.json").read_text())
    assert metrics["steps"] == 1 and 0 < metrics["final_loss"] < 10
    if make_row is messages_row:  # the Space and compare render with the recorded template
        from a3duck.space.chat import build_chat_prompt
        from a3duck.space.runtime import Runtime, ServeConfig

        rt = Runtime.load(ServeConfig(adapter=str(adapter), device="cpu", dtype="fp32"))
        history = [{"role": "user", "content": TURNS[0][0]},
                   {"role": "assistant", "content": TURNS[0][1]}]
        prompt = build_chat_prompt(rt.template, rt.tokenizer, TURNS[1][0], history)
        assert rt.info.template == "chat" and prompt.text.endswith(
            "<|im_start|>user\nAnd of Chile?<|im_end|>\n<|im_start|>assistant\n")
