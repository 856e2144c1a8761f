"""The ``a3duck`` lm-eval backend equals lm-eval's ``hf`` backend, request by request."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

TOL = 1e-3  # fp32 per-request |Δ log-likelihood| (issue 3)

lm_eval_hf = pytest.importorskip("lm_eval.models.huggingface")
from lm_eval.api.instance import Instance  # noqa: E402 - only where lm-eval is installed

from a3duck.evaluation.fast_backend import A3DuckLM  # noqa: E402


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_eval", ROOT / "bench" / "eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _requests(pairs):
    return [Instance("loglikelihood", {}, pair, i, ("t", i, 1)) for i, pair in enumerate(pairs)]


def _compare(reference, fast, tol=TOL):
    assert len(reference) == len(fast)
    for i, ((ref_ll, ref_greedy), (ll, greedy)) in enumerate(zip(reference, fast, strict=True)):
        assert abs(ref_ll - ll) <= tol, f"request {i}: hf {ref_ll} vs a3duck {ll}"
        assert ref_greedy == greedy, f"request {i}: is_greedy differs"


# Shared contexts with several continuations, one-token and multi-token answers, a context with
# trailing whitespace (moved into the continuation by lm-eval), an empty context (scored after
# the prefix token), a duplicated request and a context long enough to be left-truncated.
PAIRS = [
    ("Question: which of these is true?\nAnswer:", " The quick brown fox"),
    ("Question: which of these is true?\nAnswer:", " Paris"),
    ("Question: which of these is true?\nAnswer:", " A"),
    ("Question: which of these is true?\nAnswer:", " Paris is the capital of France."),
    ("What is the capital of France? ", "Paris"),
    ("What is the capital of France? ", "the lazy dog"),
    ("", "Below is an instruction"),
    ("### Instruction:\n", "### Response:"),
    ("### Instruction:\n", "### Response:"),
    ("The quick brown fox jumps over the lazy dog. " * 30, " 0123456789"),
    ("The quick brown fox jumps over the lazy dog. " * 30, " B"),
]


@pytest.fixture(scope="module")
def tiny_backends(tiny_llama_dir):
    hf = lm_eval_hf.HFLM(pretrained=str(tiny_llama_dir), dtype="float32", device="cpu",
                         batch_size=3, max_length=128)
    fast = A3DuckLM(pretrained=str(tiny_llama_dir), dtype="float32", device="cpu",
                    batch_size=3, max_length=128)
    return hf, fast


def test_registered_with_lm_eval():
    from lm_eval.api.registry import get_model

    assert get_model("a3duck") is A3DuckLM


def test_tiny_model_equals_hf_per_request(tiny_backends):
    hf, fast = tiny_backends
    requests = _requests(PAIRS)
    # the long context really is truncated (that path is hf's own code, inherited)
    assert len(hf.tok_encode(PAIRS[-1][0])) > hf.max_length
    reference = hf.loglikelihood(requests, disable_tqdm=True)
    result = fast.loglikelihood(requests, disable_tqdm=True)
    _compare(reference, result)
    assert result[7] == result[8]  # duplicates score alike
    assert all(ll < 0 for ll, _ in result)


def test_batch_size_does_not_change_results(tiny_backends, tiny_llama_dir):
    _, fast = tiny_backends
    one = A3DuckLM(pretrained=str(tiny_llama_dir), dtype="float32", device="cpu", batch_size=1,
                   max_length=128)
    requests = _requests(PAIRS)
    _compare(one.loglikelihood(requests, disable_tqdm=True),
             fast.loglikelihood(requests, disable_tqdm=True), tol=1e-5)


def test_rolling_and_eager_attention(tiny_backends, tiny_llama_dir):
    hf, fast = tiny_backends
    rolling = [Instance("loglikelihood_rolling", {}, ("The quick brown fox jumps. " * 12,), 0)]
    assert fast.loglikelihood_rolling(rolling, disable_tqdm=True) == pytest.approx(
        hf.loglikelihood_rolling(rolling, disable_tqdm=True), abs=TOL)
    from transformers import AutoModelForCausalLM

    eager = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="eager",
                                                 dtype=torch.float32)
    fast_eager = A3DuckLM(pretrained=eager, tokenizer=str(tiny_llama_dir), batch_size=2,
                          max_length=128)
    assert fast_eager._can_pack()
    requests = _requests(PAIRS)
    _compare(hf.loglikelihood(requests, disable_tqdm=True),
             fast_eager.loglikelihood(requests, disable_tqdm=True))


@pytest.fixture(scope="module")
def tiny_adapter(tiny_llama_dir, tmp_path_factory):
    from a3duck import models
    from a3duck.adapter_folder import TRAIN_CONFIG
    from a3duck.config import TrainConfig, save_config

    base, _ = models.load_base(str(tiny_llama_dir), dtype=torch.float32)
    model = models.attach_ia3(base)
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "ia3_l" in name:
            p.data.mul_(1 + 0.5 * torch.rand_like(p))
    out = tmp_path_factory.mktemp("tiny_adapter")
    model.save_pretrained(out)
    save_config(TrainConfig(base_model=str(tiny_llama_dir)), out / TRAIN_CONFIG)
    return out


def test_adapter_equals_hf_peft(tiny_backends, tiny_llama_dir, tiny_adapter):
    hf_base, _ = tiny_backends
    hf = lm_eval_hf.HFLM(pretrained=str(tiny_llama_dir), peft=str(tiny_adapter),
                         dtype="float32", device="cpu", batch_size=3, max_length=128)
    fast = A3DuckLM(pretrained=str(tiny_llama_dir), peft=str(tiny_adapter), dtype="float32",
                    device="cpu", batch_size=3, max_length=128)
    requests = _requests(PAIRS[:6])
    reference = hf.loglikelihood(requests, disable_tqdm=True)
    _compare(reference, fast.loglikelihood(requests, disable_tqdm=True))
    base = hf_base.loglikelihood(requests, disable_tqdm=True)
    assert max(abs(a[0] - b[0]) for a, b in zip(base, reference, strict=True)) > 1e-3


def test_adapter_for_another_base_is_refused(tiny_adapter, tiny_llama_dir, tmp_path):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from a3duck.models import AdapterMismatchError

    other = LlamaForCausalLM(LlamaConfig(vocab_size=400, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4,
                                         num_key_value_heads=2))
    other.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(tmp_path)
    with pytest.raises(AdapterMismatchError, match="does not fit"):
        A3DuckLM(pretrained=str(tmp_path), peft=str(tiny_adapter), device="cpu")


@pytest.fixture(scope="module")
def smol_backends(embedded_model_dir):
    return _bench_module().load_backends(str(embedded_model_dir), "float32", "cpu", 4)


@pytest.mark.slow
def test_smollm2_real_arc_and_hellaswag_equal_hf(smol_backends, shared_data):
    """Real 25-shot ARC and 10-shot HellaSwag requests on the real model: equal per request."""
    bench = _bench_module()
    hf, fast = smol_backends
    for task, limit in (("arc_challenge", 1), ("hellaswag", 2)):
        docs, requests = bench.build_requests(task, shared_data, limit)
        reference = hf.loglikelihood(requests, disable_tqdm=True)
        result = fast.loglikelihood(requests, disable_tqdm=True)
        _compare(reference, result)
        assert bench.accuracy(docs, reference) == bench.accuracy(docs, result)


@pytest.mark.slow  # spawns a subprocess
def test_bench_smoke_on_tiny_model(tiny_llama_dir, shared_data, tmp_path):
    """bench/eval.py end to end with tiny sizes; checks the report, never the timings."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "eval.py"), "--model", str(tiny_llama_dir),
         "--data-dir", str(shared_data), "--limit", "2", "--shots", "1", "--batch-size", "2",
         "--output", str(out)],
        check=False, capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "arc_challenge" in proc.stdout and "hellaswag" in proc.stdout
    report = json.loads(out.read_text())
    assert [t["task"] for t in report["tasks"]] == ["arc_challenge", "hellaswag"]
    for row in report["tasks"]:
        assert row["docs"] == 2 and row["num_fewshot"] == 1
        assert row["max_abs_delta_loglik"] <= TOL
        assert row["is_greedy_mismatches"] == 0
        assert row["hf"] == row["a3duck"]


@pytest.mark.slow
def test_smollm2_lm_eval_task_requests_equal_hf(smol_backends, shared_data, tmp_path):
    """Requests built by lm-eval's own task objects (a3duck eval's local MMLU-5 and TruthfulQA
    tasks): one-token MMLU answers, where `hf` reuses logits across choices, and mc2's many
    answers per question."""
    from a3duck.evaluation import runner

    plan = runner.plan(["mmlu", "truthfulqa_mc2"], shared_data, tmp_path)
    mmlu = next(t for name, t in plan.objects.items() if "mmlu" in name)
    tqa = next(t for name, t in plan.objects.items() if "truthfulqa" in name)
    requests = []
    for task, limit in ((mmlu, 2), (tqa, 1)):
        task.build_all_requests(limit=limit, rank=0, world_size=1)
        requests += task.instances
    assert any(len(r.args[1]) == 2 for r in requests)  # " A"-style one-token answers
    hf, fast = smol_backends
    _compare(hf.loglikelihood(requests, disable_tqdm=True),
             fast.loglikelihood(requests, disable_tqdm=True))
