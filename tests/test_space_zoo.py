"""The Space serving a zoo: names, a picker of exactly the loaded adapters, mixed batches that
answer like each adapter alone, Compare in one batch, and gradio_client choosing the adapter."""

from __future__ import annotations

import threading
import time

import pytest
import space_support
import torch
from multi_support import random_adapter
from space_support import TINY_SETTINGS, load_runtime, serve

from a3duck.errors import A3DuckError, ConfigError
from a3duck.generation import Settings
from a3duck.space.chat import build_chat_prompt
from a3duck.space.zoo import adapter_specs, display_names

ARGS = list(TINY_SETTINGS.values())
MESSAGES = ["What is the capital of France?", "Repeat the number 7.", "Say hi", "0123"]


def test_display_names(tmp_path):
    run = tmp_path / "run-a" / "adapter"
    run.mkdir(parents=True)
    other = tmp_path / "run-b" / "adapter"
    other.mkdir(parents=True)
    (tmp_path / "x" / "run-a" / "adapter").mkdir(parents=True)
    specs = adapter_specs(f"{run}, org/duck ,none") + [
        "mine=org/other", str(tmp_path / "x" / "run-a" / "adapter"), str(other)]
    assert display_names(specs) == [
        ("run-a", str(run)), ("org/duck", "org/duck"), ("mine", "org/other"),
        ("run-a-2", str(tmp_path / "x" / "run-a" / "adapter")), ("run-b", str(other))]
    assert adapter_specs(["a,b", "c"]) == ["a", "b", "c"] and adapter_specs("none") == []
    with pytest.raises(ConfigError, match="used twice"):
        display_names(["base=org/x"])


@pytest.fixture(scope="module")
def zoo(tiny_llama_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("zoo")
    first = random_adapter(tiny_llama_dir, work / "run-one" / "adapter", seed=21)
    second = random_adapter(tiny_llama_dir, work / "two", seed=22)
    return load_runtime(tiny_llama_dir, f"{first},duo={second}")


def serial_answer(rt, message, name):
    """The adapter's answer alone: its own selection, one row, no scheduler."""
    prompt = build_chat_prompt(rt.template_for(name), rt.tokenizer, message, (), 400)
    return one_piece_answer(rt, name, prompt.input_ids, Settings.checked(**TINY_SETTINGS),
                            rt.template_for(name).stop_markers)


def one_piece_answer(rt, name, ids, settings, markers):
    """``name``'s answer alone (space_support.one_piece_answer), as the Space shows an empty one."""
    return (space_support.one_piece_answer(rt, name, ids, settings, markers)
            or "_(the model ended its answer without producing text)_")


def test_runtime_names_and_picks(zoo):
    assert zoo.choices == ["run-one", "duo", "base"]
    assert zoo.pick() == "run-one" and zoo.pick(False) == "base" and zoo.pick(True, "duo") == "duo"
    with pytest.raises(A3DuckError, match="unknown adapter 'evil/model'"):
        zoo.pick(True, "evil/model")
    ids = torch.tensor([[1, 20, 30, 40]])
    logits = {}
    for name in zoo.choices:
        with zoo.session(name) as model, torch.inference_mode():
            logits[name] = model(input_ids=ids).logits
    assert not torch.allclose(logits["run-one"], logits["duo"])
    assert not torch.allclose(logits["duo"], logits["base"])


def test_concurrent_chats_join_one_mixed_batch_and_answer_like_alone(zoo):
    from a3duck.space.handlers import chat_handler

    names = ["run-one", "duo", "base", "duo"]
    expected = [serial_answer(zoo, m, n) for m, n in zip(MESSAGES, names)]
    assert len(set(expected)) > 1
    answers = [None] * len(names)

    def visitor(i):
        answers[i] = list(chat_handler(zoo)(MESSAGES[i], [], *ARGS, True, names[i]))[-1]

    prefills = zoo.scheduler.engine.prefills
    before = len(prefills)
    with zoo.scheduler.hold():  # the model is busy: the four requests queue up meanwhile
        threads = [threading.Thread(target=visitor, args=(i,)) for i in range(len(names))]
        for t in threads:
            t.start()
        deadline = time.time() + 120
        while zoo.scheduler.waiting < len(names) and time.time() < deadline:
            time.sleep(0.02)
        assert zoo.scheduler.waiting == len(names)
    for t in threads:
        t.join(60)
    assert [a[0] for a in answers] == expected
    assert prefills[before:] == [4]  # one prefill, then one batch, with all three models
    assert "`duo`" in answers[1][1] and "tokens/s" in answers[1][1]


def test_compare_answers_every_model_in_one_batch(zoo):
    from a3duck.space.handlers import compare_handler

    before = len(zoo.scheduler.engine.prefills)
    *texts, = list(compare_handler(zoo)("Say hi", "", 12, 0))[-1]
    first, base, status, duo = texts
    prompt = zoo.template.render("Say hi")
    ids = zoo.tokenizer(prompt)["input_ids"]
    settings = Settings.checked(max_new_tokens=12, temperature=0, top_p=0.9, top_k=50,
                                repetition_penalty=1.1)
    for name, got in (("run-one", first), ("base", base), ("duo", duo)):
        assert got == one_piece_answer(zoo, name, ids, settings, zoo.template.stop_markers), name
    assert zoo.scheduler.engine.prefills[before:] == [3]  # admitted together
    assert status.count("tokens/s") == 3
    only = list(compare_handler(zoo)("Say hi", "", 4, 0, ["duo"]))[-1]
    assert only[0] == "" and only[1] == "" and only[3]
    import gradio as gr

    with pytest.raises(gr.Error, match="at least one"):
        list(compare_handler(zoo)("Say hi", "", 4, 0, []))


@pytest.mark.slow
def test_gradio_clients_choose_their_adapter(zoo):
    from gradio_client import Client

    with serve(zoo, concurrency=8) as url:
        a, b, old = Client(url, verbose=False), Client(url, verbose=False), Client(url,
                                                                                  verbose=False)
        jobs = [a.submit(MESSAGES[0], *ARGS, True, "run-one", api_name="/chat"),
                b.submit(MESSAGES[0], *ARGS, True, "duo", api_name="/chat"),
                old.submit(MESSAGES[1], *ARGS, False, api_name="/chat")]  # old client: no name
        results = [j.result(timeout=120)[0] for j in jobs]
        assert results == [serial_answer(zoo, MESSAGES[0], "run-one"),
                           serial_answer(zoo, MESSAGES[0], "duo"),
                           serial_answer(zoo, MESSAGES[1], "base")]
        assert results[0] != results[1]
        with pytest.raises(Exception, match="(?i)not in the list of choices|evil"):
            a.predict("hi", *ARGS, True, "evil/model", api_name="/chat")


def test_repeated_flag_and_env_list(monkeypatch):
    import argparse

    from a3duck.space.serve import add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    monkeypatch.delenv("A3DUCK_ADAPTER", raising=False)
    args = parser.parse_args(["--adapter", "out/adapter", "--adapter", "duck=org/duck"])
    assert adapter_specs(config_from_args(args).adapter) == ["out/adapter", "duck=org/duck"]
    monkeypatch.setenv("A3DUCK_ADAPTER", "org/a, org/b")
    assert adapter_specs(config_from_args(parser.parse_args([])).adapter) == ["org/a", "org/b"]


def test_a_visitor_who_left_is_not_decoded_and_other_settings_share_the_batch(zoo):
    from a3duck.space.scheduler import Row

    greedy = Settings.checked(max_new_tokens=6, temperature=0, top_p=1, top_k=0,
                              repetition_penalty=1)
    sampled = Settings.checked(max_new_tokens=6, temperature=0.7, top_p=0.9, top_k=50,
                               repetition_penalty=1.2)
    ids = zoo.tokenizer(zoo.template.render("Say hi"))["input_ids"]
    before = len(zoo.scheduler.engine.prefills)
    with zoo.scheduler.hold():
        left, stays, other = zoo.scheduler.submit(
            [Row(ids, "duo", greedy), Row(ids, "run-one", greedy), Row(ids, "base", sampled)])
        left.cancel.set()
        left.request.cancel()  # what closing its stream does
    assert list(zoo.scheduler.follow(left)) == [] and left.request.generated == []
    assert list(zoo.scheduler.follow(stays))[-1] == serial_answer_ids(zoo, ids, "run-one",
                                                                      greedy)
    list(zoo.scheduler.follow(other))
    assert zoo.scheduler.engine.prefills[before:] == [2]  # greedy and sampled rows together


def test_a_short_chat_arriving_mid_answer_finishes_before_the_long_one(zoo):
    """Rows join the running batch between tokens: a 3-token answer asked for while a long
    one streams ends while the long one is still being decoded (token counts, not time)."""
    from a3duck.space.scheduler import Row

    greedy = Settings.checked(max_new_tokens=60, temperature=0, top_p=1, top_k=0,
                              repetition_penalty=1.1)
    ids = zoo.tokenizer(zoo.template.render("Count to a hundred"))["input_ids"]
    (long,) = zoo.scheduler.submit([Row(ids, "duo", greedy)])
    stream = iter(zoo.scheduler.follow(long))
    next(stream)  # the long answer has started
    short = list(zoo.scheduler.stream(ids, "run-one", greedy.with_max(3)))
    long_so_far = len(long.request.generated)
    rest = list(stream)
    assert short and rest
    assert long_so_far < len(long.request.generated) == 60
    assert rest[-1] == serial_answer_ids(zoo, ids, "duo", greedy)  # joining changed nothing


def serial_answer_ids(rt, ids, name, settings):
    return one_piece_answer(rt, name, ids, settings, ())


def test_a_hub_adapter_that_cannot_be_fetched_is_named_and_the_others_served(tiny_llama_dir,
                                                                             tmp_path):
    """Offline (the tests' HF_HUB_OFFLINE=1), a Hub id of a zoo is not in the cache: the page
    says so in one banner and serves the rest; with nothing to serve, one error (exit 2)."""
    from space_support import free_port

    from a3duck.errors import ModelError
    from a3duck.space.serve import main
    from a3duck.space.ui import build_demo

    local = random_adapter(tiny_llama_dir, tmp_path / "kept" / "adapter", seed=23)
    rt = load_runtime(tiny_llama_dir, f"{local},org/not-cached")
    assert rt.choices == ["kept", "base"]
    assert [name for name, _ in rt.unavailable] == ["org/not-cached"]
    banners = [c["props"]["value"] for c in build_demo(rt).get_config_file()["components"]
               if c.get("props", {}).get("elem_id") == "banner"]
    assert len(banners) == 1 and "`org/not-cached`" in banners[0]
    assert "not in the local Hugging Face cache" in banners[0]
    with pytest.raises(ModelError, match="none of the adapters could be loaded"):
        load_runtime(tiny_llama_dir, "org/a,org/b")
    with pytest.raises(ModelError, match="adapter folder not found"):  # a local typo still stops
        load_runtime(tiny_llama_dir, f"{local},./no-such-run/adapter")
    argv = ["--base-model", str(tiny_llama_dir), "--adapter", "org/a", "--port", str(free_port())]
    assert main(argv, space_dir=tmp_path) == 2  # locally (no SPACE_ID): a message, not a page
