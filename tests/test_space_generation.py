"""Unit tests of the Space's prompt building, input checks and stopping rules."""

from __future__ import annotations

import itertools
import threading

import pytest
import torch

from a3duck.errors import InputError
from a3duck.generation import Settings, Stats, stream_generate, visible_text
from a3duck.prompts import ALPACA
from a3duck.space.chat import ChatPrompt, build_chat_prompt, check_message, pair_history

MARKERS = ALPACA.stop_markers


# --- stopping rules ---------------------------------------------------------------------------
@pytest.mark.parametrize("text, shown, stopped", [
    ("Paris is the capital.", "Paris is the capital.", False),
    ("Paris.\n\n### Instruction:\nWhat next?", "Paris.", True),
    ("Paris.\n### Response: more", "Paris.", True),
    ("Paris.\n\n##", "Paris.\n\n", False),  # could become a marker: held back
    ("Paris.\n\n### Instr", "Paris.\n\n", False),
    ("C# is a language", "C# is a language", False),  # '#' then text: not a marker prefix
    ("Use #", "Use ", False),
])
def test_visible_text(text, shown, stopped):
    assert visible_text(text, MARKERS) == (shown, stopped)


# --- input checks -----------------------------------------------------------------------------
@pytest.mark.parametrize("bad, words", [
    ("", "empty"), ("  \n\t", "empty"), ("\x00\x01", "empty"), (None, "must be text"),
    ("x" * 20_001, "too long"), ("bad \ud800 surrogate", "utf-8"),
])
def test_check_message_rejects_with_a_clear_message(bad, words):
    with pytest.raises(InputError, match=f"(?i){words}"):
        check_message(bad)


def test_check_message_removes_control_characters_only():
    assert check_message("a\x00b\x1b[31mc\td\ne é 日本") == "ab[31mc\td\ne é 日本"


def test_settings_checked():
    s = Settings.checked(max_new_tokens="64", temperature=0, top_p=1, top_k=0,
                         repetition_penalty=1.2)
    assert s == Settings(64, 0.0, 1.0, 0, 1.2)
    assert s.generate_kwargs() == {"max_new_tokens": 64, "do_sample": False,
                                   "repetition_penalty": 1.2}
    sampled = Settings.checked(max_new_tokens=8, temperature=0.5, top_p=0.9, top_k=40,
                               repetition_penalty=1.0).generate_kwargs()
    assert sampled["do_sample"] and sampled["temperature"] == 0.5 and sampled["top_k"] == 40
    with pytest.raises(InputError, match="temperature must be between 0 and 2, got 9"):
        Settings.checked(temperature=9)
    with pytest.raises(InputError, match="top_k must be a number"):
        Settings.checked(top_k="many")


# --- prompt building --------------------------------------------------------------------------
def test_pair_history_reads_openai_style_messages():
    history = [{"role": "user", "content": "hi"},
               {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
               {"role": "user", "content": {"text": "unanswered"}}]
    assert pair_history(history) == [("hi", "hello")]


@pytest.fixture(scope="module")
def sp_tok(sp_tokenizer_dir):
    from a3duck.models import load_tokenizer

    return load_tokenizer(str(sp_tokenizer_dir))


def test_prompt_is_the_training_template(sp_tok):
    prompt = build_chat_prompt(ALPACA, sp_tok, "What is the capital of France?")
    assert prompt.text == ALPACA.render("What is the capital of France?")
    assert prompt.input_ids == sp_tok(prompt.text)["input_ids"]
    assert prompt.warning is None


def test_history_turns_are_rendered_with_the_template(sp_tok):
    history = [{"role": "user", "content": "Say A"}, {"role": "assistant", "content": "A "}]
    prompt = build_chat_prompt(ALPACA, sp_tok, "Say B", history)
    assert prompt.text == ALPACA.render("Say A") + "A\n\n" + ALPACA.render("Say B")


def test_oldest_turns_are_dropped_first(sp_tok):
    history = []
    for i in range(6):
        history += [{"role": "user", "content": f"question {i} " * 5},
                    {"role": "assistant", "content": f"answer {i}"}]
    full = build_chat_prompt(ALPACA, sp_tok, "last", history)
    budget = len(full.input_ids) - 20
    prompt = build_chat_prompt(ALPACA, sp_tok, "last", history, budget=budget)
    assert len(prompt.input_ids) <= budget
    assert prompt.dropped_turns >= 1 and "question 0" not in prompt.text
    assert "question 5" in prompt.text and prompt.text.endswith(ALPACA.render("last"))
    assert "earlier turn(s) left out" in prompt.warning


def test_a_long_message_is_trimmed_from_the_start_with_a_warning(sp_tok):
    message = " ".join(f"word{i}" for i in range(400)) + " final question?"
    prompt = build_chat_prompt(ALPACA, sp_tok, message, budget=120)
    assert isinstance(prompt, ChatPrompt)
    assert len(prompt.input_ids) <= 120
    assert prompt.trimmed_tokens > 0 and "token(s) of your message cut" in prompt.warning
    assert prompt.text.endswith("final question?\n\n### Response:\n")
    assert prompt.text.startswith(ALPACA.render("")[:40])
    assert "word0 " not in prompt.text


# --- streaming --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smol():
    from a3duck import models

    torch.set_num_threads(1)
    return models.load("HuggingFaceTB/SmolLM2-135M-Instruct")


@pytest.mark.slow
def test_stream_equals_generate_and_stops_at_a_marker(smol, embedded_model_dir):
    model, tok = smol
    ids = tok(ALPACA.render("What is the capital of France? Answer in one sentence."))[
        "input_ids"]
    settings = Settings.checked(max_new_tokens=24, temperature=0, top_p=1, top_k=0,
                                repetition_penalty=1)
    with torch.inference_mode():
        out = model.generate(input_ids=torch.tensor([ids]), do_sample=False, max_new_tokens=24)
    reference = tok.decode(out[0, len(ids):], skip_special_tokens=True).strip()
    stats = Stats()
    parts = list(stream_generate(model, tok, ids, settings, MARKERS, stats))
    assert parts[-1] == reference  # no marker in this answer: the whole text
    assert len(parts) > 1  # streamed in pieces
    assert all(b.startswith(a.rstrip()) for a, b in itertools.pairwise(parts))
    assert stats.new_tokens == out.shape[1] - len(ids) and stats.tokens_per_second > 0
    # Pick a word from the middle of the reference as a stop marker: generation must end there.
    marker = reference.split()[len(reference.split()) // 2]
    stats = Stats()
    parts = list(stream_generate(model, tok, ids, settings, (marker,), stats))
    assert parts[-1] == reference[: reference.index(marker)].rstrip()
    assert stats.stopped_by == "stop marker" and stats.new_tokens < out.shape[1] - len(ids)


def test_closing_the_stream_cancels_generation(tiny_llama_dir):
    from a3duck import models

    model, tok = models.load(str(tiny_llama_dir))
    settings = Settings.checked(max_new_tokens=400, temperature=0, top_p=1, top_k=0,
                                repetition_penalty=1)
    stats = Stats()
    stream = stream_generate(model, tok, tok("hello")["input_ids"], settings, (), stats)
    next(stream)
    stream.close()
    assert not any(t.name == "a3duck-generate" for t in threading.enumerate())
    assert 0 < stats.new_tokens < 400
