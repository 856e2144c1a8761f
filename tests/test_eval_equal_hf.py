"""On the embedded SmolLM2 and the real local benchmark rows, `a3duck eval`'s numbers equal
lm-eval's own `hf` backend on the same documents and shots (base and adapter)."""

from __future__ import annotations

import pytest
from adapter_factory import make_adapter
from eval_support import small_data_dir

from a3duck.embedded import EMBEDDED_MODEL_ID
from a3duck.evaluation import results as res
from a3duck.evaluation.leaderboard import TASK_ORDER
from a3duck.evaluation.runner import ModelSpec, evaluate, plan, run_suite

LIMIT = 2  # documents per task (per MMLU subject); real weights on CPU: keep it tiny


def _hf_rows(which: str, p, model_args: dict) -> list[dict]:
    """The reference: lm-eval's hf backend loading the model itself, same tasks and seeds."""
    from lm_eval.api.registry import get_model

    lm = get_model("hf").create_from_arg_obj(model_args, {"batch_size": 4, "device": "cpu"})
    rows, _ = res.rows_for_model(which, evaluate(lm, p, LIMIT), p.names, p.partial)
    return rows


@pytest.mark.slow
def test_a3duck_eval_equals_lm_eval_hf(shared_data, embedded_model_dir, tmp_path):
    data = small_data_dir(shared_data, tmp_path / "bench")
    adapter = make_adapter(embedded_model_dir, tmp_path / "adapter", base_id=EMBEDDED_MODEL_ID)
    p = plan(list(TASK_ORDER), data, tmp_path / "work")
    spec = ModelSpec(base_model=EMBEDDED_MODEL_ID, adapters=[str(adapter)], dtype="fp32",
                     device="cpu", batch_size=4, backend="a3duck")
    ours, _ = run_suite(spec, p, LIMIT)
    base_args = {"pretrained": str(embedded_model_dir), "dtype": "float32"}
    ref = _hf_rows("base", p, base_args) + _hf_rows("adapter", p, base_args |
                                                    {"peft": str(adapter)})
    key = {(r["model"], r["task"]): r for r in ref}
    assert len(ours) == len(ref) == 10  # 4 tasks + average, base and adapter
    for row in ours:
        want = key[row["model"], row["task"]]
        assert row["value"] == pytest.approx(want["value"], abs=1e-4), row
        assert row["n_docs"] == want["n_docs"] and row["limited"]
    assert key["base", "truthfulqa_mc2"]["value"] != key["adapter", "truthfulqa_mc2"]["value"]
