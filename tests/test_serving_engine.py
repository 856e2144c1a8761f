"""The serving engine: greedy fp32 output equals each adapter's own PeftModel.generate, token
for token, with requests joining and leaving a running batch; per-row sampling; the queue."""

from __future__ import annotations

import threading

import pytest
import torch
from multi_support import peft_model, random_adapter

from a3duck.multi_adapter import AdapterSource, load_multi
from a3duck.serving.engine import Engine, Overloaded
from a3duck.serving.request import Finished, Inbox, Piece, Request, Sampling

PROMPTS = ["What is the capital of France?", "Repeat: the quick brown fox jumps over",
           "0123", "Answer: A B C D. Question: which of these is true? The lazy dog",
           "The quick brown fox", "Below is an instruction that describes a task."]
GREEDY = Sampling(temperature=0)


@pytest.fixture(scope="module")
def zoo(tiny_llama_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("serving")
    folders = {"kv": random_adapter(tiny_llama_dir, work / "kv", seed=1),
               "qo": random_adapter(tiny_llama_dir, work / "qo", seed=2,
                                    target_modules=["q_proj", "o_proj", "up_proj"],
                                    feedforward_modules=["o_proj"]),
               "kv2": random_adapter(tiny_llama_dir, work / "kv2", seed=3)}
    multi, tokenizer = load_multi(str(tiny_llama_dir), [AdapterSource(n, str(f), f)
                                                        for n, f in folders.items()],
                                  dtype=torch.float32, device="cpu")
    return multi, tokenizer, folders


def reference_tokens(tiny_llama_dir, folder, ids, max_new_tokens, eos, repetition_penalty=1.0):
    model = peft_model(tiny_llama_dir, folder)
    with torch.inference_mode():
        out = model.generate(input_ids=torch.tensor([ids]), max_new_tokens=max_new_tokens,
                             do_sample=False, eos_token_id=eos, pad_token_id=eos,
                             repetition_penalty=repetition_penalty)
    return out[0, len(ids):].tolist()


def run_request(engine, tokenizer, ids, slot, max_tokens, sampling=GREEDY, **kw):
    inbox = Inbox()
    request = Request(ids, slot, tokenizer, sampling, max_tokens, sink=inbox.put,
                      eos=frozenset(engine.eos), **kw)
    engine.submit(request)
    return request, inbox


def test_greedy_rows_joining_mid_decode_equal_peft_generate(tiny_llama_dir, zoo):
    multi, tokenizer, folders = zoo
    engine = Engine(multi, tokenizer, max_batch=8)
    names = ["kv", "base", "qo", "kv2", "kv", "base"]
    lengths = [30, 12, 20, 7, 25, 16]  # rows leave at different steps; later ones join mid-way
    jobs = []
    for i, (name, text, n) in enumerate(zip(names, PROMPTS, lengths)):
        ids = tokenizer(text)["input_ids"]
        jobs.append((name, ids, n, *run_request(engine, tokenizer, ids, multi.names.index(name), n)))
        if i == 2:  # the first three are decoding before the others arrive
            while engine.steps < 3:
                threading.Event().wait(0.01)
    for name, ids, n, request, inbox in jobs:
        events = list(inbox)
        assert isinstance(events[-1], Finished) and events[-1].error is None
        ref = reference_tokens(tiny_llama_dir, folders.get(name), ids, n, tokenizer.eos_token_id)
        assert request.generated == ref, name
        text = "".join(e.text for e in events if isinstance(e, Piece))
        whole = tokenizer.decode(ref, skip_special_tokens=True)
        if "\ufffd" not in whole:  # random byte tokens may decode differently in pieces
            assert text == whole
        assert events[-1].completion_tokens == len(ref)
    assert engine.peak_rows >= 4  # they really shared steps


def test_requests_arriving_together_are_prefilled_in_one_batch_and_equal_peft(tiny_llama_dir,
                                                                             zoo):
    """Prompts of different lengths and adapters, admitted at one step: one left-padded
    prefill, and each answer is still its adapter's own greedy answer, token for token
    (one of them ends at its first token, so the batch keeps only the others' rows)."""
    multi, tokenizer, folders = zoo
    engine = Engine(multi, tokenizer, max_batch=8)
    names, lengths = ["qo", "base", "kv", "kv2", "kv"], [14, 9, 1, 12, 6]
    with engine.hold():
        jobs = [(name, ids, n, *run_request(engine, tokenizer, ids, multi.names.index(name), n))
                for name, text, n in zip(names, PROMPTS[1:], lengths)
                for ids in [tokenizer(text)["input_ids"]]]
    assert len({len(ids) for _, ids, *_ in jobs}) > 1  # really padded
    for name, ids, n, request, inbox in jobs:
        events = list(inbox)
        assert isinstance(events[-1], Finished) and events[-1].error is None
        ref = reference_tokens(tiny_llama_dir, folders.get(name), ids, n, tokenizer.eos_token_id)
        assert request.generated == ref, name
    assert engine.prefills[0] == len(jobs)  # one prefill call took every request


def test_repetition_penalty_is_per_row_and_equals_generates(tiny_llama_dir, zoo):
    """Rows with and without a repetition penalty (the Space's setting) share the steps; each
    greedy answer equals ``PeftModel.generate(repetition_penalty=...)``, token for token, and
    the penalty really changes the answer."""
    multi, tokenizer, folders = zoo
    engine = Engine(multi, tokenizer, max_batch=8)
    ids = tokenizer(PROMPTS[1])["input_ids"]
    cases = [("kv", 1.0), ("kv", 1.3), ("base", 1.1), ("qo", 2.0)]
    with engine.hold():
        jobs = [(name, penalty, *run_request(engine, tokenizer, ids, multi.names.index(name), 16,
                                             Sampling(temperature=0,
                                                      repetition_penalty=penalty)))
                for name, penalty in cases]
    for name, penalty, request, inbox in jobs:
        assert list(inbox)[-1].error is None
        assert request.generated == reference_tokens(
            tiny_llama_dir, folders.get(name), ids, 16, tokenizer.eos_token_id, penalty), \
            (name, penalty)
    assert jobs[0][2].generated != jobs[1][2].generated  # same adapter, penalty 1 vs 1.3
    assert engine.prefills == [len(cases)]


def test_sampling_rows_share_a_step_and_follow_their_seed(zoo):
    multi, tokenizer, _ = zoo
    ids = tokenizer(PROMPTS[0])["input_ids"]
    engine = Engine(multi, tokenizer)

    def sample(seed, temperature=0.9, top_p=0.8, top_k=20):
        runs = [run_request(engine, tokenizer, ids, 1, 12,
                            Sampling(temperature, top_p, top_k, seed)) for _ in range(2)]
        for _, inbox in runs:
            list(inbox)
        return [r.generated for r, _ in runs]

    a, b = sample(7)
    assert a == b  # same seed, same tokens (even decoded side by side)
    c, _ = sample(8)
    assert c != a
    greedy, _ = run_request(engine, tokenizer, ids, 1, 12)
    top1 = run_request(engine, tokenizer, ids, 1, 12, Sampling(1.0, 1.0, 1, 3))[0]
    while not (greedy.finished and top1.finished):
        threading.Event().wait(0.01)
    assert top1.generated == greedy.generated  # top_k=1 is greedy


def test_stop_strings_max_tokens_and_logprobs(zoo):
    multi, tokenizer, _ = zoo
    engine = Engine(multi, tokenizer)
    ids = tokenizer(PROMPTS[1])["input_ids"]
    full, inbox = run_request(engine, tokenizer, ids, 2, 20, logprobs=2)
    events = list(inbox)
    text = "".join(e.text for e in events if isinstance(e, Piece))
    infos = [t for e in events if isinstance(e, Piece) for t in e.tokens]
    assert [t.id for t in infos] == full.generated
    assert all(len(t.top) == 2 and t.top[0][1] >= t.logprob - 1e-6 for t in infos)
    stop = text[len(text) // 2: len(text) // 2 + 3]
    assert stop.strip()
    _, inbox = run_request(engine, tokenizer, ids, 2, 20, stop=[stop])
    events = list(inbox)
    cut = "".join(e.text for e in events if isinstance(e, Piece))
    assert cut == text[: text.find(stop)] and events[-1].reason == "stop"
    assert events[-1].completion_tokens < 20


def one_row_engine_decoding(zoo, max_queue, max_tokens):
    """An engine of one row whose row is already decoding a ``max_tokens`` answer."""
    multi, tokenizer, _ = zoo
    engine = Engine(multi, tokenizer, max_batch=1, max_queue=max_queue)
    ids = tokenizer(PROMPTS[2])["input_ids"]
    request, inbox = run_request(engine, tokenizer, ids, 0, max_tokens)
    while engine.steps < 1:
        threading.Event().wait(0.01)
    return engine, tokenizer, ids, request, inbox


def test_queue_limit_and_cancel(zoo):
    engine, tokenizer, ids, first, inbox = one_row_engine_decoding(zoo, 2, 200)
    waiting = [run_request(engine, tokenizer, ids, 0, 3) for _ in range(2)]
    with pytest.raises(Overloaded):
        run_request(engine, tokenizer, ids, 0, 3)
    first.cancel()  # the client left: its slot goes to the next request
    assert list(inbox)[-1].reason == "cancelled"
    for request, box in waiting:
        assert list(box)[-1].reason == "length" and len(request.generated) == 3


def test_close_cancels_every_request_stops_the_thread_and_refuses_new_ones(zoo):
    engine, tokenizer, ids, running, running_box = one_row_engine_decoding(zoo, 4, 10_000)
    waiting, waiting_box = run_request(engine, tokenizer, ids, 0, 3)
    engine.close()
    assert not engine._thread.is_alive()
    assert list(running_box)[-1].reason == "cancelled" and 0 < len(running.generated) < 10_000
    assert list(waiting_box)[-1].reason == "cancelled" and waiting.generated == []
    assert engine.load == (0, 0) and engine._cache is None
    with pytest.raises(Overloaded, match="shutting down"):
        run_request(engine, tokenizer, ids, 0, 3)
    engine.close()  # idempotent
