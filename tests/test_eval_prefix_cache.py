"""Cross-document prefix cache of the ``a3duck`` backend: equal to lm-eval's ``hf`` per request
(fp32, |Δ log-likelihood| <= 1e-4, same is_greedy) while reading shared prefixes once."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch
from adapter_factory import make_adapter

lm_eval_hf = pytest.importorskip("lm_eval.models.huggingface")
from lm_eval.api.instance import Instance  # noqa: E402 - only where lm-eval is installed

from a3duck.evaluation.fast_backend import A3DuckLM  # noqa: E402
from a3duck.evaluation.prefix_cache import plan_prefixes, radix_tree  # noqa: E402

TOL = 1e-4
MAX_LENGTH = 256


class _G:
    def __init__(self, context):
        self.context = list(context)


def _leaves(node):
    return len(node.groups) + sum(_leaves(c) for c in node.children)


def test_radix_plan_reads_each_distinct_prefix_once():
    contexts = [[1, 2, 3, 4, 5, 9], [1, 2, 3, 4, 5, 8, 1], [1, 2, 3, 7], [1, 2, 3], [6, 6],
                [1, 2, 3, 4, 5, 8, 2], [1, 2, 3, 4, 5, 8, 2]]
    groups = [_G(c) for c in contexts[:-1]]
    root = plan_prefixes(groups, budget=100, min_saved=0)
    assert _leaves(root) == len(groups)
    read = 0
    for node, parent in root.walk():
        read += node.length - (parent.length if parent else 0)
        for g in node.groups:
            assert g.context[:node.length] == node.tokens and len(g.context) > node.length
            read += len(g.context) - node.length
    # the limit: sorted contexts, each reading what it does not share with its predecessor
    # (every context keeps its last token to score from)
    ordered = sorted(contexts[:-1])
    limit = len(ordered[0])
    for a, b in pairwise(ordered):
        shared = 0
        while shared < min(len(a), len(b)) and a[shared] == b[shared]:
            shared += 1
        limit += len(b) - min(shared, len(a) - 1, len(b) - 1)
    assert read == limit == 3 + 5 + 1 + 1 + 1 + 2  # counted by hand
    assert radix_tree(groups).below == len(groups)
    # no budget: nothing cached, every group scored from scratch at the root
    flat = plan_prefixes(groups, budget=0, min_saved=0)
    assert not flat.children and len(flat.groups) == len(groups)


SHOTS = "".join(f"Question {i}: what is {i} plus {i}?\nA. {i}\nB. {2 * i}\nC. {3 * i}\nAnswer: B\n\n"
                for i in range(1, 4))


def _mmlu_like():
    """Two 'subjects' with a shared description start and their own shots; four questions
    each, one-token letters and a multi-token answer; one request ``hf`` left-truncates."""
    pairs = []
    for subject in ("algebra", "botany"):
        prefix = f"The following are questions about {subject}.\n\n{SHOTS}"
        for q in range(4):
            context = f"{prefix}Question: is {q} in {subject} {'odd' if q % 2 else 'even'}?" \
                      f"\nA. yes\nB. no\nAnswer:"
            pairs += [(context, f" {letter}") for letter in "AB"] + [(context, " maybe so")]
    long_context = "The following are questions about algebra.\n\n" + SHOTS * 6
    pairs.append((long_context, " B"))
    return [Instance("loglikelihood", {}, pair, i, ("mmlu_like", i, 1))
            for i, pair in enumerate(pairs)]


def _compare(reference, ours):
    assert len(reference) == len(ours)
    for i, ((ref_ll, ref_greedy), (ll, greedy)) in enumerate(zip(reference, ours, strict=True)):
        assert abs(ref_ll - ll) <= TOL, f"request {i}: hf {ref_ll} vs a3duck {ll}"
        assert ref_greedy == greedy, f"request {i}: is_greedy differs"


@pytest.fixture(scope="module")
def hf_tiny(tiny_llama_dir):
    return lm_eval_hf.HFLM(pretrained=str(tiny_llama_dir), dtype="float32", device="cpu",
                           batch_size=4, max_length=MAX_LENGTH)


def _fast(model_dir, **kwargs):
    return A3DuckLM(pretrained=str(model_dir), dtype="float32", device="cpu",
                    max_length=MAX_LENGTH, **kwargs)


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_prefix_cache_equals_hf_and_reads_less(hf_tiny, tiny_llama_dir, batch_size):
    requests = _mmlu_like()
    assert len(hf_tiny.tok_encode(requests[-1].args[0])) > MAX_LENGTH  # really left-truncated
    reference = hf_tiny.loglikelihood(requests, disable_tqdm=True)
    cached = _fast(tiny_llama_dir, batch_size=batch_size)
    _compare(reference, cached.loglikelihood(requests, disable_tqdm=True))
    uncached = _fast(tiny_llama_dir, batch_size=batch_size, prefix_cache_tokens=0)
    _compare(reference, uncached.loglikelihood(requests, disable_tqdm=True))
    plain, read = cached.token_counts["mmlu_like"]
    plain_0, read_0 = uncached.token_counts["mmlu_like"]
    assert plain == plain_0 == sum(min(len(c) + len(t) - 1, MAX_LENGTH) for _, c, t in
                                   _tokenised(cached, requests))
    # without the cache: each context once per question (shared-context packing only)
    contexts = {tuple(c) for _, c, _ in _tokenised(cached, requests)[:-1]}
    conts = sum(len(t) - 1 for _, _, t in _tokenised(cached, requests)[:-1])
    assert read_0 == sum(map(len, contexts)) + conts + MAX_LENGTH
    # with it: each subject's shots once, so at least 3 x 2 x (shots) fewer tokens
    shots = len(cached.tok_encode(SHOTS))
    assert read_0 - read >= 2 * 3 * shots * 0.9
    assert read < plain / 3


def _tokenised(lm, requests):
    return [(None, *lm._encode_pair(*r.args)) for r in requests]


def test_prefix_cache_with_adapter_equals_hf_peft(tiny_llama_dir, tmp_path):
    adapter = make_adapter(tiny_llama_dir, tmp_path / "adapter")
    requests = _mmlu_like()
    hf = lm_eval_hf.HFLM(pretrained=str(tiny_llama_dir), peft=str(adapter), dtype="float32",
                         device="cpu", batch_size=4, max_length=MAX_LENGTH)
    reference = hf.loglikelihood(requests, disable_tqdm=True)
    fast = _fast(tiny_llama_dir, peft=str(adapter), batch_size=4)
    _compare(reference, fast.loglikelihood(requests, disable_tqdm=True))
    base = _fast(tiny_llama_dir, batch_size=4).loglikelihood(requests, disable_tqdm=True)
    assert max(abs(a[0] - b[0]) for a, b in zip(base, reference, strict=True)) > 1e-3


def test_prefix_cache_eager_attention(hf_tiny, tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    eager = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="eager",
                                                 dtype=torch.float32)
    fast = A3DuckLM(pretrained=eager, tokenizer=str(tiny_llama_dir), batch_size=2,
                    max_length=MAX_LENGTH)
    requests = _mmlu_like()
    _compare(hf_tiny.loglikelihood(requests, disable_tqdm=True),
             fast.loglikelihood(requests, disable_tqdm=True))


@pytest.mark.slow
def test_embedded_model_lm_eval_requests_equal_hf(embedded_model_dir, shared_data, tmp_path):
    """lm-eval's own MMLU-5 (two subjects, three questions each: the five shots are shared) and
    TruthfulQA (the fixed preamble is shared) requests on the embedded SmolLM2."""
    from eval_support import small_data_dir

    from a3duck.evaluation import runner

    data = small_data_dir(shared_data, tmp_path / "bench")
    plan = runner.plan(["mmlu", "truthfulqa_mc2"], data, tmp_path / "work")
    requests = []
    for task in plan.objects.values():
        task.build_all_requests(limit=3 if "mmlu" in task.config.task else 2, rank=0,
                                world_size=1)
        requests += task.instances
    hf = lm_eval_hf.HFLM(pretrained=str(embedded_model_dir), dtype="float32", device="cpu",
                         batch_size=4)
    fast = A3DuckLM(pretrained=str(embedded_model_dir), dtype="float32", device="cpu",
                    batch_size=4)
    _compare(hf.loglikelihood(requests, disable_tqdm=True),
             fast.loglikelihood(requests, disable_tqdm=True))
    plain = sum(p for p, _ in fast.token_counts.values())
    read = sum(r for _, r in fast.token_counts.values())
    assert read < plain / 2.5, fast.token_counts
