"""Conversational data: messages / ShareGPT schemas, validation, the chat template and its mask."""


import pytest
from conftest import write_jsonl

from a3duck import data as D
from a3duck import dataset as DS
from a3duck.config import TrainConfig
from a3duck.errors import ConfigError
from a3duck.prompts import ALPACA, get_template, resolve_template_name

TALK = [{"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "**Paris**."},
        {"role": "user", "content": "And of Italy?"},
        {"role": "assistant", "content": "**Rome**, on the Tiber."}]
SHAREGPT = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
                              {"from": "human", "value": "Bye"}, {"from": "gpt", "value": "Ciao."}]}


@pytest.fixture(scope="module")
def smol_tok(embedded_model_dir):
    from a3duck.models import load_tokenizer

    return load_tokenizer(str(embedded_model_dir))


@pytest.fixture(scope="module")
def sp_tok(sp_tokenizer_dir):
    from a3duck.models import load_tokenizer

    return load_tokenizer(str(sp_tokenizer_dir))


def normalise(rows, template="chat", skip=False):
    report = D.DataReport("d")
    return D.normalise(rows, "d", template, skip, report), report


def test_messages_and_sharegpt_detected_and_read():
    (ex,), _ = normalise([{"messages": TALK}])
    assert ex.messages == TALK and ex.completion == "**Rome**, on the Tiber."
    (ex,), _ = normalise([SHAREGPT])
    assert [m["role"] for m in ex.messages] == ["user", "assistant"] * 2
    assert ex.messages[3]["content"] == "Ciao."


@pytest.mark.parametrize("turns,why", [
    ([{"role": "robot", "content": "x"}], "messages turn 1: unknown role 'robot'"),
    ([{"role": "user", "content": " "}, {"role": "assistant", "content": "a"}],
     "messages turn 1 (user): content is missing or empty"),
    ([{"role": "user", "content": "q"}], "messages: the conversation ends without an assistant turn"),
    ([{"role": "user", "content": ["q"]}, {"role": "assistant", "content": "a"}],
     "messages turn 1 (user): content must be text, got list"),
    ([{"role": "user", "content": "q"}, {"role": "user", "content": "q2"}],
     "messages turn 2: expected an assistant turn, got user"),
    ("hello", "messages must be a non-empty list of turns"),
])
def test_bad_conversations_are_row_errors_and_can_be_skipped(turns, why):
    rows = [{"messages": TALK}, {"messages": turns}]
    with pytest.raises(D.DataError) as err:
        normalise(rows)
    assert f"row 2: {why}" in str(err.value) and "--skip-bad-rows" in str(err.value)
    kept, report = normalise(rows, skip=True)
    assert len(kept) == 1 and len(report.bad_rows) == 1
    assert report.bad_rows[0][0] == 2 and report.bad_rows[0][1].startswith(why)


def test_sharegpt_unknown_speaker():
    bad = {"conversations": [{"from": "user", "value": "q"}, {"from": "gpt", "value": "a"}]}
    with pytest.raises(D.DataError, match="conversations turn 1: unknown from 'user' "
                                          r"\(expected system, human, gpt\)"):
        normalise([bad])


def test_labels_are_exactly_each_assistant_turn_and_its_end_of_turn_token(smol_tok):
    template = get_template("chat", smol_tok)
    (ex,), _ = normalise([{"messages": TALK}])
    ids, mask = DS.tokenize_example(ex, smol_tok, add_eos=False, template=template)
    assert ids == smol_tok(smol_tok.apply_chat_template(TALK, tokenize=False),
                           add_special_tokens=False)["input_ids"]  # the tokens HF renders
    labelled = [t for t, m in zip(ids, mask) if m]
    eot = smol_tok.convert_tokens_to_ids("<|im_end|>")
    expected = []
    for turn in TALK:
        if turn["role"] == "assistant":
            expected += smol_tok(turn["content"], add_special_tokens=False)["input_ids"] + [eot]
    assert labelled == expected
    # labelled spans are contiguous runs: one per assistant turn
    runs = sum(1 for i, m in enumerate(mask) if m and (i == 0 or not mask[i - 1]))
    assert runs == 2


def test_instruction_rows_under_chat_are_one_user_and_one_assistant_turn(smol_tok):
    row = {"instruction": "Add.", "input": "2 + 2", "output": "4"}
    (ex,), _ = normalise([row])
    assert ex.messages == [{"role": "user", "content": "Add.\n\n2 + 2"},
                           {"role": "assistant", "content": "4"}]
    ids, mask = DS.tokenize_example(ex, smol_tok, False, get_template("chat", smol_tok))
    assert smol_tok.decode([t for t, m in zip(ids, mask) if m]) == "4<|im_end|>"


def test_auto_resolves_and_chat_without_a_template_names_alternatives(smol_tok, sp_tok):
    assert resolve_template_name("auto", True, smol_tok) == "chat"
    assert resolve_template_name("auto", False, smol_tok) == "alpaca"
    assert resolve_template_name("auto", True, sp_tok) == "alpaca"  # no chat template
    with pytest.raises(ConfigError, match="needs a tokenizer with a chat template.*use one of: "
                                          "alpaca"):
        resolve_template_name("chat", True, sp_tok)
    with pytest.raises(ConfigError, match="prompt_template: unknown prompt template 'vicuna'; "
                                          "known: auto, alpaca, chat"):
        TrainConfig(prompt_template="vicuna")


def test_alpaca_renders_conversations_turn_by_turn(sp_tok):
    (ex,), _ = normalise([{"messages": TALK}], template="alpaca")
    pieces = ALPACA.pieces(ex.messages)
    assert pieces[0] == ("Be brief.\n\n" + ALPACA.render("Capital of France?"), False)
    assert pieces[1:3] == [("**Paris**.", True), ("\n\n" + ALPACA.render("And of Italy?"), False)]
    ids, mask = DS.tokenize_example(ex, sp_tok, add_eos=True, template=ALPACA)
    assert ids[0] == sp_tok.bos_token_id and mask.count(1) > 0
    assert sum(1 for t, m in zip(ids, mask) if m and t == sp_tok.eos_token_id) == 2


def test_long_conversation_cut_at_a_turn_boundary(tmp_path, smol_tok):
    long = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Tell me more."},
            {"role": "assistant", "content": "word " * 200}]
    path = write_jsonl(tmp_path / "c.jsonl", [{"messages": long}])
    config = TrainConfig(data=str(path), cutoff_len=96)
    ds, report, name = DS.prepare_dataset(config, smol_tok)
    assert name == "chat" and (report.cut_at_turn, report.truncated) == (1, 0)
    ids, mask = ds[0]["input_ids"], ds[0]["completion_mask"]
    assert len(ids) < 96 and ids[-1] == smol_tok.convert_tokens_to_ids("<|im_end|>")
    assert smol_tok.decode([t for t, m in zip(ids, mask) if m]) == "Hello.<|im_end|>"
    assert report.to_dict()["cut_at_turn_boundary"] == 1


def test_compare_prompt_is_the_history_rendered_with_the_adapter_template(smol_tok):
    from a3duck.compare import prompt_of

    (ex,), _ = normalise([{"messages": TALK}])
    template = get_template("chat", smol_tok)
    assert prompt_of(ex, template) == smol_tok.apply_chat_template(
        TALK[:-1], tokenize=False, add_generation_prompt=True)


def test_space_history_uses_the_chat_template(smol_tok):
    from a3duck.space.chat import build_chat_prompt

    history = [{"role": "user", "content": "Capital of France?"},
               {"role": "assistant", "content": "**Paris**."}]
    prompt = build_chat_prompt(get_template("chat", smol_tok), smol_tok, "And of Italy?", history)
    assert prompt.text == smol_tok.apply_chat_template(
        [*history, {"role": "user", "content": "And of Italy?"}], tokenize=False,
        add_generation_prompt=True)
    assert prompt.input_ids == smol_tok(prompt.text, add_special_tokens=False)["input_ids"]


def test_packed_multi_turn_rows_equal_rows_one_by_one(tiny_llama_dir, tmp_path):
    import torch
    from train_support import build_trainer, per_token_losses, tiny_config
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rows = [{"messages": [{"role": "user", "content": f"Say {i}."},
                          {"role": "assistant", "content": f"{i} {i}"},
                          {"role": "user", "content": "Again."},
                          {"role": "assistant", "content": f"{i} {i} {i}"}]} for i in range(3)]
    data = write_jsonl(tmp_path / "c.jsonl", rows)
    trainer, tok = build_trainer(tiny_config(tiny_llama_dir, data, tmp_path, cutoff_len=256))
    rows = [trainer.train_dataset[i] for i in range(3)]
    packed = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)(rows)
    single = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)
    model = trainer.model.eval()
    with torch.no_grad():
        got = per_token_losses(model, packed["input_ids"], packed["labels"], packed["position_ids"])
        ref = torch.cat([per_token_losses(model, b["input_ids"], b["labels"])
                         for b in (single([r]) for r in rows)])
    # two answers (with EOS) per row are labelled, the prompts between them are not
    assert got.shape == ref.shape and torch.allclose(got, ref, atol=1e-5)
    labels = packed["labels"][0].tolist()
    assert sum(1 for t in labels if t == tok.eos_token_id) == 6
