"""Mixed-adapter batches equal each adapter's own PeftModel, row by row (fp32, |d| <= 1e-5)."""

from __future__ import annotations

import pytest
import torch
from multi_support import peft_model, random_adapter

from a3duck.errors import AdapterMismatchError
from a3duck.multi_adapter import BASE, AdapterSource, load_multi

PROMPTS = ["What is the capital of France?", "Repeat: the quick brown fox jumps over",
           "0123", "Answer: A B C D. Question: which of these is true? The lazy dog"]


def sources(**folders):
    return [AdapterSource(name, str(folder), folder) for name, folder in folders.items()]


@pytest.fixture(scope="module")
def adapters(tiny_llama_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("multi")
    return {
        "kv": random_adapter(tiny_llama_dir, work / "kv", seed=1),
        # other target modules, with a feed-forward one that is not down_proj
        "qo": random_adapter(tiny_llama_dir, work / "qo", seed=2,
                             target_modules=["q_proj", "o_proj", "up_proj"],
                             feedforward_modules=["o_proj"]),
        "kv2": random_adapter(tiny_llama_dir, work / "kv2", seed=3),
    }


@pytest.fixture(scope="module")
def multi(tiny_llama_dir, adapters):
    torch.manual_seed(0)
    model, tokenizer = load_multi(str(tiny_llama_dir), sources(**adapters), dtype=torch.float32,
                                  device="cpu")
    return model, tokenizer


def left_padded(tokenizer, texts):
    tokenizer.padding_side = "left"
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    tokenizer.padding_side = "right"
    return batch


def test_forward_rows_equal_each_adapters_peft_model(tiny_llama_dir, adapters, multi):
    model, tokenizer = multi
    names = ["kv", BASE, "qo", "kv2"]
    batch = left_padded(tokenizer, PROMPTS)
    mask = batch["attention_mask"]
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    assert len(set(mask.sum(-1).tolist())) > 1  # rows of different lengths
    with torch.inference_mode():
        mixed = model(names, input_ids=batch["input_ids"], attention_mask=mask,
                      position_ids=position_ids).logits
    for row, name in enumerate(names):
        ref = peft_model(tiny_llama_dir, adapters.get(name))
        n = int(mask[row].sum())
        with torch.inference_mode():
            alone = ref(input_ids=batch["input_ids"][row:row + 1, -n:]).logits[0]
        assert (mixed[row, -n:] - alone).abs().max() <= 1e-5, name


def test_greedy_generate_rows_equal_each_adapters_peft_model(tiny_llama_dir, adapters, multi):
    model, tokenizer = multi
    names = ["qo", "kv", BASE, "kv"]
    batch = left_padded(tokenizer, PROMPTS)
    kwargs = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    with torch.inference_mode():
        out = model.generate(names, **batch, **kwargs)[:, batch["input_ids"].shape[1]:]
    refs = {}
    for row, name in enumerate(names):
        ref = refs.setdefault(name, peft_model(tiny_llama_dir, adapters.get(name)))
        ids = tokenizer(PROMPTS[row], return_tensors="pt")
        with torch.inference_mode():
            alone = ref.generate(**ids, **kwargs)[0, ids["input_ids"].shape[1]:]
        assert out[row, :len(alone)].tolist() == alone.tolist(), name


def test_one_name_selects_every_row_and_threads_do_not_mix(multi):
    model, tokenizer = multi
    ids = tokenizer(PROMPTS[:2], return_tensors="pt", padding=True)["input_ids"]
    with torch.inference_mode():
        both = model(["kv", "kv"], input_ids=ids).logits
        with model.select("kv") as plain:
            one = plain(input_ids=ids).logits
        base = model.model(input_ids=ids).logits  # no selection in this thread: the base
        with model.select(BASE) as plain:
            base2 = plain(input_ids=ids).logits
    assert torch.equal(both, one) and torch.equal(base, base2)
    assert not torch.allclose(one, base)


def test_adapters_for_another_base_are_refused_before_loading(tiny_llama_dir, adapters,
                                                              tmp_path, embedded_model_dir):
    other = random_adapter(tiny_llama_dir, tmp_path / "other", seed=4, base_id="someone/else")
    with pytest.raises(AdapterMismatchError, match="trained on 'someone/else'"):
        load_multi("HuggingFaceTB/SmolLM2-135M-Instruct", sources(other=other))
    # shapes: a tiny-Llama adapter on SmolLM2 (local folder, so the id cannot decide)
    with pytest.raises(AdapterMismatchError, match="does not fit base model"):
        load_multi(str(embedded_model_dir), sources(kv=adapters["kv"]))
    with pytest.raises(Exception, match="unique"):
        load_multi(str(tiny_llama_dir), sources(base=adapters["kv"]))


@pytest.mark.slow
def test_embedded_model_mixed_batch_equals_peft(embedded_model_dir, tmp_path):
    """The real SmolLM2-135M: forward and greedy generate, two adapters + base in one batch."""
    torch.set_num_threads(2)
    folders = {"a": random_adapter(embedded_model_dir, tmp_path / "a", seed=5),
               "b": random_adapter(embedded_model_dir, tmp_path / "b", seed=6,
                                   target_modules=["v_proj", "down_proj"],
                                   feedforward_modules=["down_proj"])}
    model, tokenizer = load_multi(str(embedded_model_dir), sources(**folders),
                                  dtype=torch.float32, device="cpu")
    names, texts = ["a", BASE, "b"], ["Name a colour.", "Hi", "What is two plus two? Answer:"]
    batch = left_padded(tokenizer, texts)
    kwargs = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    with torch.inference_mode():
        out = model.generate(names, **batch, **kwargs)
    width = batch["input_ids"].shape[1]
    for row, name in enumerate(names):
        ref = peft_model(embedded_model_dir, folders.get(name))
        ids = tokenizer(texts[row], return_tensors="pt")
        n = ids["input_ids"].shape[1]
        with torch.inference_mode():
            alone = ref.generate(**ids, **kwargs)[0]
            logits_alone = ref(input_ids=alone[None]).logits[0]
            mixed = model([name], input_ids=alone[None]).logits[0]
        assert out[row, width:width + len(alone) - n].tolist() == alone[n:].tolist(), name
        assert (mixed - logits_alone).abs().max() <= 1e-5, name
