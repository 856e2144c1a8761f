"""Local benchmark files give exactly the prompts lm-eval's own tasks build, and
build_mc_prompt reproduces lm-eval's context (few-shot included) from explicit shots."""

from __future__ import annotations

import pytest
from eval_support import small_data_dir

from a3duck.evaluation import benchmarks as local_data
from a3duck.evaluation.formats import LEADERBOARD_TASKS, build_mc_prompt
from a3duck.evaluation.leaderboard import FEWSHOT_SEED, TASK_ORDER
from a3duck.evaluation.runner import plan

TQA_PRIMER_END = "Q: Where were the 1992 Olympics held?\nA: The 1992 Olympics were held in " \
                 "Barcelona, Spain.\n\n"


@pytest.fixture(scope="module")
def local_plan(shared_data, tmp_path_factory):
    data = small_data_dir(shared_data, tmp_path_factory.mktemp("data"))
    return plan(list(TASK_ORDER), data, tmp_path_factory.mktemp("work"))


def test_leaderboard_settings():
    got = {t: (s.num_fewshot, s.metric) for t, s in LEADERBOARD_TASKS.items()}
    assert got == {"arc_challenge": (25, "acc_norm"), "hellaswag": (10, "acc_norm"),
                   "mmlu": (5, "acc"), "truthfulqa_mc2": (0, "acc")}


def test_conversion_to_hub_rows(shared_data):
    arc = local_data.read_arc(shared_data / "arc" / "ARC-Challenge-Train.jsonl")[0]
    assert arc == {"id": "Mercury_SC_415702", "question": "George wants to warm his hands "
                   "quickly by rubbing them. Which skin surface will produce the most heat?",
                   "choices": {"text": ["dry palms", "wet palms", "palms covered with oil",
                                        "palms covered with lotion"],
                               "label": ["A", "B", "C", "D"]}, "answerKey": "A"}
    hs = local_data.read_hellaswag(shared_data / "hellaswag" / "hellaswag_val_part1.jsonl")[0]
    assert (hs["activity_label"], hs["ctx_b"], hs["label"]) == ("Pole vault", "a few women", "3")
    tqa = local_data.read_truthfulqa(shared_data / "truthfulqa" / "mc_task_v1_part1.json")[0]
    assert tqa["mc2_targets"]["labels"] == [1, 1, 1, 0, 0, 0]
    assert tqa["mc2_targets"]["choices"][3] == "You will have to spend winter in the underworld."
    mmlu = local_data.read_mmlu(shared_data / "mmlu" / "val" / "anatomy_val.csv", "anatomy")[0]
    assert mmlu["choices"][3] == "Homeostasis" and mmlu["answer"] == 3


def test_local_prompts_are_lm_evals(local_plan):
    """The contexts lm-eval builds over the local files, written out by hand from its templates."""
    t = local_plan.objects
    arc = t["a3duck_arc_challenge"]
    doc = arc.eval_docs[0]
    ctx = arc.fewshot_context(doc, 0)
    assert ctx == f"Question: {doc['question']}\nAnswer:"
    hs = t["a3duck_hellaswag"]
    assert hs.fewshot_context(hs.eval_docs[0], 0) == (
        "Pole vault: Pole vault is a sport where you run with a pole and stop and swing your "
        "body. A few women")
    assert hs.doc_to_choice(hs.eval_docs[0])[3] == ("are in the gym practicing to do this pole "
                                                    "vault, trying to do their best.")
    tqa = t["a3duck_truthfulqa_mc2"]
    ctx = tqa.fewshot_context(tqa.eval_docs[0], 0)
    assert ctx.startswith("Q: What is human life expectancy in the United States?\n")
    assert ctx.endswith(TQA_PRIMER_END + "Q: What happens if you eat a pomegranate?\nA:")
    mm = t["a3duck_mmlu_anatomy"]
    ctx = mm.fewshot_context(mm.eval_docs[0], 5)
    assert ctx.startswith("The following are multiple choice questions (with answers) about "
                          "anatomy.\n\nWhat is the embryological origin of the hyoid bone?\nA. ")
    assert ctx.count("\nAnswer: ") == 5 and ctx.endswith("D. Homeostasis\nAnswer:")


def _shots_and_context(task, doc, n):
    """lm-eval's context for ``doc`` with its seeded sampler, and the shots it drew."""
    task.set_fewshot_seed(FEWSHOT_SEED)
    ctx = task.fewshot_context(doc, n)
    task.set_fewshot_seed(FEWSHOT_SEED)
    shots = task.sampler.sample(n, eval_doc=doc if task.fewshot_cfg.split ==
                                task.config.test_split else None)
    return list(shots), ctx


@pytest.mark.parametrize("bench,name", [
    ("arc_challenge", "a3duck_arc_challenge"), ("hellaswag", "a3duck_hellaswag"),
    ("mmlu", "a3duck_mmlu_astronomy"), ("truthfulqa_mc2", "a3duck_truthfulqa_mc2")])
def test_build_mc_prompt_equals_lm_eval(local_plan, bench, name):
    task = local_plan.objects[name]
    n = LEADERBOARD_TASKS[bench].num_fewshot
    for doc in list(task.eval_docs)[:3]:
        shots, ctx = _shots_and_context(task, doc, n)
        requests = task.construct_requests(doc, ctx)
        got_ctx, conts = build_mc_prompt(bench, shots, doc)
        assert got_ctx == ctx
        assert conts == [r.args[1] for r in requests]
        assert all(r.args[0] == got_ctx for r in requests)
    assert len(shots) == n


def test_build_mc_prompt_in_evaluation_order(local_plan):
    """The first request lm-eval's evaluator builds (seeded) equals build_mc_prompt's."""
    task = local_plan.objects["a3duck_arc_challenge"]
    task.set_fewshot_seed(FEWSHOT_SEED)
    task.build_all_requests(limit=1, rank=0, world_size=1)
    first = task.instances[0]
    task.set_fewshot_seed(FEWSHOT_SEED)
    shots = task.sampler.sample(25)
    assert build_mc_prompt("arc_challenge", list(shots), first.doc)[0] == first.args[0]


def test_build_mc_prompt_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown task"):
        build_mc_prompt("winogrande", [], {})
    with pytest.raises(ValueError, match="subject"):
        build_mc_prompt("mmlu", [], {"question": "q", "choices": list("abcd"), "answer": 0})


def test_acc_norm_scores_pick_what_lm_eval_picks():
    """The one acc_norm formula (Space, bench/) against lm-eval's own process_results."""
    from a3duck.evaluation.formats import lm_eval_task
    from a3duck.evaluation.leaderboard import ARC, acc_norm_scores

    task = lm_eval_task(ARC.name)
    doc = {"id": "x", "question": "Which?", "answerKey": "B",
           "choices": {"text": ["red", "a much longer blue"], "label": ["A", "B"]}}
    choices = task.doc_to_choice(doc)
    for lls in ([-3.0, -10.0], [-3.0, -30.0], [-9.0, -9.5]):
        norm = acc_norm_scores(lls, [" " + c for c in choices])
        ours = float(norm.index(max(norm)) == 1)
        theirs = task.process_results(doc, [(ll, False) for ll in lls])["acc_norm"]
        assert ours == theirs, (lls, norm)
