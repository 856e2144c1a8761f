"""The OpenAI API of `a3duck serve`, through the official `openai` client, on the embedded
model with three adapters: greedy answers equal each adapter's own PeftModel.generate (streamed
and not, under concurrent load with requests joining mid-decode), a short request overtakes a
long stream, and every fault case answers in OpenAI's error shape while the server keeps on."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from multi_support import peft_model, random_adapter
from serving_support import running_serve

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-test-a3duck"
QUESTIONS = ["Name a colour.", "What is 2 + 2?", "Write one word about the sea.",
             "Say hello in French."]


@pytest.fixture(scope="module")
def zoo(embedded_model_dir, tmp_path_factory):
    from a3duck import models

    work = tmp_path_factory.mktemp("zoo")
    for seed, name in enumerate(["a", "b", "c"], start=1):
        random_adapter(embedded_model_dir, work / "zoo" / name, seed=seed,
                       base_id=models.EMBEDDED_MODEL_ID)
    return work / "zoo"


@pytest.fixture(scope="module")
def server(zoo, tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "serve.log"
    with running_serve(["--adapters", str(zoo), "--dtype", "fp32", "--device", "cpu",
                        "--max-batch", "8"], log, KEY) as url:
        yield url, log
    assert KEY not in log.read_text()  # the key is never logged


@pytest.fixture(scope="module")
def client(server):
    import openai

    return openai.OpenAI(base_url=server[0], api_key=KEY, max_retries=0, timeout=300)


def reference(embedded_model_dir, zoo, name, question, max_tokens):
    """The adapter's own PeftModel.generate, greedy fp32, on the prompt its template renders."""
    from a3duck import adapter_folder, models
    from a3duck.prompts import get_template, truncate_at_stop

    folder = zoo / name if name != "base" else None
    tokenizer = models.load_tokenizer(str(embedded_model_dir))
    template = get_template(adapter_folder.template(folder) if folder else "chat", tokenizer)
    text = template.render_messages([{"role": "user", "content": question}])
    ids = tokenizer(text, add_special_tokens=template.add_special_tokens)["input_ids"]
    with torch.inference_mode():
        out = peft_model(embedded_model_dir, folder).generate(
            input_ids=torch.tensor([ids]), max_new_tokens=max_tokens, do_sample=False,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)
    answer = tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)
    return truncate_at_stop(answer, tuple(template.stop_markers))


def ask(client, model, question, max_tokens, stream):
    kwargs = dict(model=model, messages=[{"role": "user", "content": question}],
                  max_tokens=max_tokens, temperature=0)
    if not stream:
        return client.chat.completions.create(**kwargs).choices[0].message.content, 1
    pieces = [c.choices[0].delta.content or "" for c in
              client.chat.completions.create(stream=True, **kwargs) if c.choices]
    return "".join(pieces), sum(1 for p in pieces if p)


def test_models_lists_base_and_adapters(client):
    ids = [m.id for m in client.models.list().data]
    assert ids == ["HuggingFaceTB/SmolLM2-135M-Instruct", "a", "b", "c"]


def test_greedy_answers_equal_peft_generate_under_concurrent_load(client, embedded_model_dir,
                                                                   zoo):
    jobs = [(name, q, 24 + 4 * i, i % 2 == 0) for i, (name, q) in
            enumerate([(n, q) for n in ("base", "a", "b", "c") for q in QUESTIONS[:2]])]
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = []
        for job in jobs:
            futures.append(pool.submit(ask, client, *job))
            time.sleep(0.3)  # later requests join a batch that is already decoding
        answers = [f.result() for f in futures]
    for (name, question, max_tokens, stream), (text, pieces) in zip(jobs, answers):
        assert text == reference(embedded_model_dir, zoo, name, question, max_tokens), name
        if stream and len(text) > 10:
            assert pieces > 2  # sent piece by piece, not at the end


def test_short_request_finishes_while_a_long_one_streams(client):
    order, first = [], threading.Event()

    def long():
        stream = client.completions.create(model="base", prompt="1, 2, 3, 4, 5, 6,",
                                           max_tokens=150, temperature=0, stream=True)
        for chunk in stream:
            order.append("long")
            first.set()
            if chunk.choices[0].finish_reason:
                order.append(f"long-end:{chunk.choices[0].finish_reason}")

    thread = threading.Thread(target=long)
    thread.start()
    assert first.wait(120)
    short = client.completions.create(model="a", prompt="Hello", max_tokens=3, temperature=0)
    order.append("short-done")
    thread.join()
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 3
    assert order[-1] == "long-end:length"
    assert order.index("short-done") < len(order) - 10  # the long one still had 10+ chunks


def test_completions_logprobs_seed_and_usage(client):
    a = client.completions.create(model="b", prompt="The sea is", max_tokens=6, temperature=0.9,
                                  seed=5, logprobs=3)
    b = client.completions.create(model="b", prompt="The sea is", max_tokens=6, temperature=0.9,
                                  seed=5, logprobs=3)
    assert a.choices[0].text == b.choices[0].text
    lp = a.choices[0].logprobs
    assert len(lp.tokens) == 6 == a.usage.completion_tokens
    assert all(len(t) == 3 and max(t.values()) >= v - 1e-5
               for t, v in zip(lp.top_logprobs, lp.token_logprobs))
    assert "".join(lp.tokens) == a.choices[0].text


def test_bad_requests_answer_in_openai_shape(client, server):
    import httpx
    import openai

    with pytest.raises(openai.NotFoundError):
        ask(client, "nope", "hi", 4, False)
    for kwargs in ({"max_tokens": 0}, {"max_tokens": 10 ** 6}, {"n": 2},
                   {"frequency_penalty": 0.5}):
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="a", messages=[{"role": "user",
                                                                 "content": "hi"}], **kwargs)
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.completions.create(model="base", prompt=[5] * 9000, max_tokens=4)
    url, _ = server
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    bad = httpx.post(f"{url}/chat/completions", content=b"{not json", headers=headers)
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    wrong = httpx.get(f"{url}/models", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


def test_oversized_bodies_get_413_and_are_never_logged(client, server):
    """64 MB bodies (the probe's): refused with 413 in OpenAI's shape, by Content-Length and
    chunked alike, on /v1 and on Gradio's own routes; the payload never reaches the log."""
    import httpx

    url, log = server
    root = url.removesuffix("/v1")
    payload = b'{"model": "base", "messages": "' + b"SECRETPAYLOAD" * 5_000_000 + b'"}'
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    def chunks():
        for i in range(0, len(payload), 1 << 20):
            yield payload[i:i + (1 << 20)]

    for target, content in ((f"{url}/chat/completions", payload),
                            (f"{url}/chat/completions", chunks()),
                            (f"{root}/gradio_api/queue/join", payload)):
        reply = httpx.post(target, content=content, headers=headers, timeout=60)
        assert reply.status_code == 413, (target, reply.text[:200])
        assert reply.json()["error"]["code"] == "request_too_large"
    assert ask(client, "base", "hi", 2, False)  # still serving
    assert "SECRETPAYLOAD" not in log.read_text()


def test_64_concurrent_clients_and_a_client_that_leaves(client):
    stream = client.chat.completions.create(model="c", messages=[{"role": "user",
                                                                  "content": "Tell a story"}],
                                            max_tokens=400, temperature=0, stream=True)
    next(iter(stream))
    stream.close()  # leaves mid-stream: its row is dropped
    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(lambda i: client.completions.create(
            model="abc"[i % 3], prompt=f"Number {i}:", max_tokens=3, temperature=0), range(64)))
    assert all(r.usage.completion_tokens == 3 for r in results)


def test_a_whole_answer_whose_client_left_is_cancelled(client, server):
    """A non-streamed client that gives up (its timeout) frees its row at once, instead of the
    server decoding all 400 tokens for nobody; the log says so in one line."""
    import openai

    log = server[1]
    before = len(log.read_text())
    impatient = client.with_options(timeout=1.5)
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(model="b", messages=[{"role": "user",
                                                                "content": "Tell a long story"}],
                                          max_tokens=400, temperature=0)
    for _ in range(40):
        if "request cancelled" in log.read_text()[before:]:
            break
        time.sleep(0.25)
    line = next(x for x in log.read_text()[before:].splitlines() if "a client left after" in x)
    assert int(line.split("a client left after ")[1].split()[0]) < 400
    result = client.completions.create(model="b", prompt="Hi", max_tokens=2, temperature=0)
    assert result.usage.completion_tokens == 2


def test_adapters_loaded_and_unloaded_at_run_time(client, server, zoo, tmp_path):
    import httpx

    url, _ = server
    headers = {"Authorization": f"Bearer {KEY}"}
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "adapter_config.json").write_text((zoo / "a" / "adapter_config.json").read_text())
    (corrupt / "adapter_model.safetensors").write_bytes(b"\x00garbage")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    config = json.loads((zoo / "a" / "adapter_config.json").read_text())
    (foreign / "adapter_config.json").write_text(json.dumps(
        {**config, "base_model_name_or_path": "meta-llama/Llama-2-13b-hf"}))
    for name, folder, words in (("bad", corrupt, "corrupt"), ("other", foreign, "trained on")):
        r = httpx.post(f"{url}/admin/adapters", json={"name": name, "path": str(folder)},
                       headers=headers)
        assert r.status_code == 400 and words in r.json()["error"]["message"], r.text
    r = httpx.post(f"{url}/admin/adapters", json={"name": "a2", "path": str(zoo / "a")},
                   headers=headers)
    assert r.status_code == 200 and r.json()["id"] == "a2"
    same = [ask(client, n, QUESTIONS[0], 8, False)[0] for n in ("a", "a2")]
    assert same[0] == same[1]
    assert httpx.delete(f"{url}/admin/adapters/a2", headers=headers).status_code == 200
    assert "a2" not in [m.id for m in client.models.list().data]
