"""Few-shot tab: prompts from the evaluation's builder, choice scores against lm-eval's own
log-likelihoods, metric-specific choice, bundled items, input errors."""

from __future__ import annotations

import math

import pytest

from a3duck.errors import InputError
from a3duck.space.scoring import (
    TASK_TITLES,
    ChoiceScores,
    build_prompt,
    check_doc,
    gold_indices,
    item_json,
    load_examples,
    loglikelihoods,
    parse_item,
    score_item,
    scorer,
)


@pytest.mark.parametrize("task", list(TASK_TITLES))
def test_bundled_items_build_prompts(task):
    data = load_examples()[task]
    for doc in data["items"]:
        context, continuations = build_prompt(task, data["shots"], doc)
        assert context and len(continuations) == len(
            doc.get("choices", {}).get("text", []) if task == "arc_challenge"
            else doc["endings"] if task == "hellaswag"
            else doc["mc2_targets"]["choices"] if task == "truthfulqa_mc2" else doc["choices"])
        assert all(0 <= g < len(continuations) for g in gold_indices(task, doc))
        for shot in data["shots"]:  # the shots appear in the prompt, in order
            assert str(shot.get("question", shot.get("ctx_a")))[:30] in context


def test_mmlu_prompt_is_lm_evals():
    shots = load_examples()["mmlu"]["shots"][:1]
    doc = load_examples()["mmlu"]["items"][0]
    context, continuations = build_prompt("mmlu", shots, doc)
    assert context == (
        "The following are multiple choice questions (with answers) about astronomy.\n\n"
        "Which planet in our solar system has the shortest year?\nA. Mercury\nB. Venus\n"
        "C. Earth\nD. Neptune\nAnswer: A\n\n"
        "Which of these is the largest planet in our solar system?\nA. Mars\nB. Jupiter\n"
        "C. Saturn\nD. Uranus\nAnswer:")
    assert continuations == [" A", " B", " C", " D"]


def test_bad_docs_are_named():
    with pytest.raises(InputError, match="lacks field"):
        check_doc("arc_challenge", {"question": "q"})
    with pytest.raises(InputError, match="shot 1 lacks field"):
        build_prompt("mmlu", [{"question": "q"}], load_examples()["mmlu"]["items"][0])
    with pytest.raises(InputError, match="not valid JSON"):
        parse_item("{nope")
    with pytest.raises(InputError, match="unknown format"):
        build_prompt("gsm8k", [], {})
    shots, doc = parse_item(item_json("hellaswag", 1, 2))
    assert len(shots) == 2 and doc == load_examples()["hellaswag"]["items"][1]


def test_metrics_choose_like_the_leaderboard():
    # acc_norm divides by the choice's characters: the long choice wins despite a lower sum.
    s = ChoiceScores("arc_challenge", "ctx", [" short", " a much longer answer"],
                     [-3.0, -6.0], [1])
    assert s.metric == "acc_norm" and s.chosen == 1 and s.correct
    assert s.probabilities == pytest.approx([1 / (1 + math.exp(-3)), 1 / (1 + math.exp(3))])
    m = ChoiceScores("mmlu", "ctx", [" A", " B", " C", " D"], [-1.0, -2.0, -0.5, -3.0], [0])
    assert m.metric == "acc" and m.chosen == 2 and not m.correct and m.mc2 is None
    t = ChoiceScores("truthfulqa_mc2", "ctx", [" t1", " t2", " f1"], [-1.0, -2.0, -1.5], [0, 1])
    p = [math.exp(x) for x in (-1.0, -2.0, -1.5)]
    assert t.mc2 == pytest.approx((p[0] + p[1]) / sum(p))


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from a3duck import models

    return models.load(str(tiny_llama_dir))


def test_loglikelihoods_equal_lm_evals(tiny):
    """The same numbers lm-eval's HFLM computes for the same (context, continuation) pairs."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    model, tok = tiny
    context, continuations = build_prompt("arc_challenge", load_examples()["arc_challenge"]
                                          ["shots"][:1], load_examples()["arc_challenge"]
                                          ["items"][0])
    ours = loglikelihoods(scorer(model, tok, 512), context, continuations)
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=1, max_length=512)
    requests = [Instance("loglikelihood", {}, (context, c), i)
                for i, c in enumerate(continuations)]
    theirs = [ll for ll, _ in lm.loglikelihood(requests, disable_tqdm=True)]
    assert ours == pytest.approx(theirs, abs=1e-4)


def test_score_item_with_adapter_on_and_off(tiny_llama_dir, tmp_path):
    from space_support import load_runtime, make_adapter

    rt = load_runtime(tiny_llama_dir, make_adapter(tiny_llama_dir, tmp_path / "ad"))
    data = load_examples()["hellaswag"]
    on = score_item(rt, "hellaswag", data["shots"], data["items"][0], adapter_on=True)
    off = score_item(rt, "hellaswag", data["shots"], data["items"][0], adapter_on=False)
    assert on.context == off.context and on.gold == [2]
    assert sum(on.probabilities) == pytest.approx(1.0)
    assert on.loglikelihoods != pytest.approx(off.loglikelihoods)


def test_fewshot_tab_handlers(tiny_llama_dir, tmp_path):
    from space_support import load_runtime, make_adapter

    from a3duck.space.handlers import fewshot_handlers

    rt = load_runtime(tiny_llama_dir, make_adapter(tiny_llama_dir, tmp_path / "ad"))
    score, generate = fewshot_handlers(rt)
    prompt, label, rows, verdict = score("mmlu", item_json("mmlu", 1, 2), True)
    assert prompt.endswith("A light-year is a unit of which quantity?\nA. Time\nB. Brightness\n"
                           "C. Distance\nD. Mass\nAnswer:")
    assert len(rows) == 4 and [r[5] for r in rows] == ["", "", "✓", ""]
    assert sum(label.values()) == pytest.approx(1.0) and "Chosen (acc)" in verdict
    answers = list(generate("Country: France\nCapital: Paris\nCountry: Peru\nCapital:", 8, "\n",
                            False))
    assert answers and "\n" not in answers[-1]


def test_space_scores_equal_a3duck_evals_requests(tiny):
    """Every bundled item of every task, scored one at a time by the Space, equals the same
    requests scored together by the backend as `a3duck eval` builds it (cross-document batches,
    shared prefixes), request by request."""
    from lm_eval.api.instance import Instance

    from a3duck.evaluation.fast_backend import A3DuckLM

    model, tok = tiny
    space = scorer(model, tok, 512)
    items, requests = [], []
    for task in TASK_TITLES:
        data = load_examples()[task]
        for doc in data["items"]:
            context, continuations = build_prompt(task, data["shots"], doc)
            items.append((context, continuations, len(requests)))
            requests += [Instance("loglikelihood", {}, (context, c), len(requests))
                         for c in continuations]
    evaluation = A3DuckLM(pretrained=model, tokenizer=tok, batch_size=4, max_length=512)
    together = [ll for ll, _ in evaluation.loglikelihood(requests, disable_tqdm=True)]
    for context, continuations, first in items:
        one = loglikelihoods(space, context, continuations)
        assert one == pytest.approx(together[first:first + len(continuations)], abs=1e-4)
    with pytest.raises(InputError, match="encodes to no tokens"):
        loglikelihoods(space, "Question: x\nAnswer:", [" A", ""])
