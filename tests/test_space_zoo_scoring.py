"""The Space's few-shot scoring with a zoo: one evaluation backend per runtime, and the adapter a
request picks is the adapter it is scored with (the same log-likelihoods as that adapter's own
PeftModel under the evaluation backend), in any order and on concurrent threads."""

from __future__ import annotations

import threading

import pytest
from multi_support import peft_model, random_adapter
from space_support import load_runtime

from a3duck.evaluation.fast_backend import A3DuckLM
from a3duck.space.scoring import build_prompt, load_examples, score_item

TASK = "arc_challenge"


@pytest.fixture(scope="module")
def zoo(tiny_llama_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("zoo-scoring")
    first = random_adapter(tiny_llama_dir, work / "one", seed=31)
    second = random_adapter(tiny_llama_dir, work / "two", seed=32)
    rt = load_runtime(tiny_llama_dir, f"one={first},two={second}")
    return rt, {"one": first, "two": second, "base": None}


def reference(tiny_llama_dir, adapter_dir, context, continuations):
    """What `a3duck eval`'s backend gives on the adapter's own PeftModel (or the base)."""
    lm = A3DuckLM(pretrained=peft_model(tiny_llama_dir, adapter_dir), tokenizer=str(tiny_llama_dir),
                  batch_size=1, max_length=512)
    return lm.choice_loglikelihoods(context, continuations)


def test_each_pick_scores_with_its_adapter(zoo, tiny_llama_dir):
    rt, folders = zoo
    data = load_examples()[TASK]
    doc = data["items"][0]
    context, continuations = build_prompt(TASK, data["shots"], doc)
    scores = {}
    for name in ("two", "base", "one", "two"):  # the scorer is built on the first pick
        scores.setdefault(name, []).append(
            score_item(rt, TASK, data["shots"], doc, rt.pick(True, name)).loglikelihoods)
    assert rt.scorer is not None
    assert scores["two"][0] == scores["two"][1]
    for name, folder in folders.items():
        want = reference(tiny_llama_dir, folder, context, continuations)
        assert scores[name][0] == pytest.approx(want, abs=1e-4), name
    assert scores["one"][0] != pytest.approx(scores["two"][0])
    assert scores["one"][0] != pytest.approx(scores["base"][0])


def test_concurrent_picks_keep_their_adapters(zoo):
    rt, _ = zoo
    data = load_examples()[TASK]
    doc = data["items"][0]
    alone = {n: score_item(rt, TASK, data["shots"], doc, n).loglikelihoods
             for n in ("one", "two", "base")}
    got, errors = {}, []

    def work(name):
        try:
            got[name] = score_item(rt, TASK, data["shots"], doc, name).loglikelihoods
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in alone]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for name, want in alone.items():
        assert got[name] == pytest.approx(want, abs=1e-5), name
