"""Benchmark: a3duck's shared-context lm-eval backend against lm-eval's ``hf`` backend.

Both backends score the SAME loglikelihood requests in one run: ARC-Challenge 25-shot and
HellaSwag 10-shot, read from ``--data-dir`` by ``a3duck eval``'s reader
(``a3duck.evaluation.benchmarks``) and prompted with lm-eval's own formats
(``a3duck.evaluation.formats.build_mc_prompt``: lm-eval's task templates and HellaSwag
``process_docs``; shots drawn with ``random.Random(1234)``). Reports wall time, requests/s, the
speed ratio, the largest per-request |Δ log-likelihood|, is_greedy disagreements, and acc /
acc_norm of each backend.

HellaSwag has no train split in ``--data-dir``: the last ``benchmarks.HELLASWAG_POOL`` rows of
its files are the few-shot pool and are never evaluated.

    python bench/eval.py --limit 50 --output bench_eval.json

``--suite`` runs the whole four-task suite instead, with lm-eval's own task objects (the requests
``a3duck eval`` sends) and reports tokens read too (see bench/eval_suite.py):

    python bench/eval.py --suite --limit 10 --output bench_suite.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from a3duck.embedded import EMBEDDED_MODEL_ID
from a3duck.evaluation.leaderboard import ARC, HELLASWAG, LEADERBOARD_TASKS, acc_norm_scores
from a3duck.evaluation.leaderboard import FEWSHOT_SEED as SEED

TASKS = (ARC.name, HELLASWAG.name)  # the tasks with a shared-context speed-up to measure


# ----------------------------------------------------------------------------- documents

def task_docs(task: str, data_dir: Path) -> tuple[list[dict], list[dict]]:
    """(eval docs, few-shot pool) in the Hub format, from the ``--data-dir`` reader that
    ``a3duck eval`` uses (ARC: Test else Dev, shots from Train; HellaSwag: shots from the last
    HELLASWAG_POOL rows when there is no train file)."""
    from a3duck.evaluation import benchmarks

    split = (benchmarks.arc_split if task == ARC.name else benchmarks.hellaswag_split)(
        data_dir)
    if split is None:
        raise SystemExit(f"no {task} files under {data_dir}")
    return split.docs, split.pool


def build_requests(task: str, data_dir: Path, limit: int, shots: int | None = None):
    """(docs, Instances): each doc is {context, choices, gold, first}; ``first`` is the index of
    its first request. Prompts are lm-eval's own (``formats.build_mc_prompt``: its templates and
    process_docs), with the shots drawn by ``random.Random(SEED)``."""
    from lm_eval.api.instance import Instance

    from a3duck.evaluation.formats import build_mc_prompt

    rows, pool = task_docs(task, data_dir)
    k = LEADERBOARD_TASKS[task].num_fewshot if shots is None else shots
    rnd = random.Random(SEED)
    docs, requests = [], []
    for doc_id, row in enumerate(rows[:limit]):
        context, continuations = build_mc_prompt(task, rnd.sample(pool, k), row)
        docs.append({"context": context, "choices": continuations, "first": len(requests),
                     "gold": LEADERBOARD_TASKS[task].gold(row)[0]})
        for cont in continuations:
            requests.append(Instance("loglikelihood", row, (context, cont), len(requests),
                                     (task, doc_id, 1)))
    return docs, requests


def accuracy(docs: list[dict], results: list[tuple[float, bool]]) -> dict[str, float]:
    """lm-eval's acc and acc_norm (:func:`a3duck.evaluation.leaderboard.acc_norm_scores`)."""
    acc = acc_norm = 0
    for doc in docs:
        lls = [results[doc["first"] + j][0] for j in range(len(doc["choices"]))]
        norm = acc_norm_scores(lls, doc["choices"])
        acc += lls.index(max(lls)) == doc["gold"]
        acc_norm += norm.index(max(norm)) == doc["gold"]
    return {"acc": acc / len(docs), "acc_norm": acc_norm / len(docs)}


# ----------------------------------------------------------------------------- running

def load_backends(model: str, dtype: str, device: str, batch_size: int):
    """(hf, a3duck) lm-eval model objects on the same weights folder."""
    from lm_eval.models.huggingface import HFLM

    from a3duck import models
    from a3duck.evaluation.fast_backend import A3DuckLM

    path = models.resolve_base_model(model)
    hf = HFLM(pretrained=path, dtype=dtype, device=device, batch_size=batch_size)
    fast = A3DuckLM(pretrained=path, dtype=dtype, device=device, batch_size=batch_size)
    return hf, fast


def timed_interleaved(hf, fast, docs, requests, rounds: int):
    """Score all requests with both backends, alternating between them chunk by chunk (whole
    documents per chunk) so that load changes on a shared machine hit both alike."""
    ref, out, t_hf, t_fast = [], [], 0.0, 0.0
    per = max(1, -(-len(docs) // rounds))
    for start in range(0, len(docs), per):
        chunk = docs[start:start + per]
        first, stop = chunk[0]["first"], chunk[-1]["first"] + len(chunk[-1]["choices"])
        for lm, results in ((hf, ref), (fast, out)):
            began = time.perf_counter()
            results += lm.loglikelihood(requests[first:stop], disable_tqdm=True)
            elapsed = time.perf_counter() - began
            if lm is hf:
                t_hf += elapsed
            else:
                t_fast += elapsed
    return ref, out, t_hf, t_fast


def bench_task(task, hf, fast, args) -> dict:
    docs, requests = build_requests(task, args.data_dir, args.limit, args.shots)
    for lm in (hf, fast):  # warm-up: first calls pay one-off allocation costs
        lm.loglikelihood(requests[:2], disable_tqdm=True)
    ref, out, t_hf, t_fast = timed_interleaved(hf, fast, docs, requests, args.rounds)
    deltas = [abs(a[0] - b[0]) for a, b in zip(ref, out, strict=True)]
    shots = LEADERBOARD_TASKS[task].num_fewshot if args.shots is None else args.shots
    return {
        "task": task, "num_fewshot": shots, "docs": len(docs), "requests": len(requests),
        "hf_seconds": round(t_hf, 3), "a3duck_seconds": round(t_fast, 3),
        "hf_requests_per_s": round(len(requests) / t_hf, 2),
        "a3duck_requests_per_s": round(len(requests) / t_fast, 2),
        "speedup": round(t_hf / t_fast, 2),
        "max_abs_delta_loglik": max(deltas),
        "is_greedy_mismatches": sum(a[1] != b[1] for a, b in zip(ref, out, strict=True)),
        "hf": accuracy(docs, ref), "a3duck": accuracy(docs, out),
    }


def print_table(rows: list[dict]) -> None:
    head = (f"{'task':<14}{'shots':>6}{'docs':>6}{'reqs':>6}{'hf s':>9}{'a3duck s':>10}"
            f"{'hf req/s':>10}{'a3 req/s':>10}{'ratio':>7}{'max|Δll|':>11}"
            f"{'acc_norm hf/a3duck':>20}")
    print(head)
    print("-" * len(head))
    for r in rows:
        accs = f"{r['hf']['acc_norm']:.4f}/{r['a3duck']['acc_norm']:.4f}"
        print(f"{r['task']:<14}{r['num_fewshot']:>6}{r['docs']:>6}{r['requests']:>6}"
              f"{r['hf_seconds']:>9.2f}{r['a3duck_seconds']:>10.2f}"
              f"{r['hf_requests_per_s']:>10.2f}{r['a3duck_requests_per_s']:>10.2f}"
              f"{r['speedup']:>6.2f}x{r['max_abs_delta_loglik']:>11.2e}{accs:>20}")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=EMBEDDED_MODEL_ID,
                   help="base model: Hub id or local folder (default: the embedded SmolLM2)")
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data",
                   help="benchmark files in their original formats (arc/, hellaswag/)")
    p.add_argument("--tasks", default=",".join(TASKS),
                   help=f"comma-separated subset of {', '.join(TASKS)}")
    p.add_argument("--limit", type=int, default=50, help="documents per task")
    p.add_argument("--shots", type=int,
                   help="override the few-shot count of every task (smoke runs; default 25/10)")
    p.add_argument("--batch-size", type=int, default=4,
                   help="rows per forward pass for both backends (hf: requests; a3duck: questions)")
    p.add_argument("--rounds", type=int, default=5,
                   help="alternate the backends over this many chunks of documents")
    p.add_argument("--dtype", default="float32", help="model dtype for both backends")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--output", type=Path, help="write the results as JSON here")
    p.add_argument("--suite", action="store_true",
                   help="the whole leaderboard suite through lm-eval's task objects (all four "
                   "tasks unless --tasks; --limit per task, per subject for MMLU)")
    p.add_argument("--mmlu-subjects", help="--suite: only these MMLU subjects (comma-separated)")
    args = p.parse_args(argv)
    if args.suite:
        from a3duck.evaluation.runner import parse_tasks

        args.suite_tasks = parse_tasks(None if args.tasks == ",".join(TASKS) else args.tasks)
        args.mmlu_subjects = args.mmlu_subjects and args.mmlu_subjects.split(",")
        return args
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(args.tasks) - set(TASKS))
    if unknown:
        p.error(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    import torch

    datasets.disable_progress_bars()  # one bar per few-shot doc lm-eval's process_docs maps

    hf, fast = load_backends(args.model, args.dtype, args.device, args.batch_size)
    if args.suite:
        import eval_suite

        rows = eval_suite.run(args, hf, fast)
    else:
        rows = [bench_task(task, hf, fast, args) for task in args.tasks]
        print_table(rows)
    if args.output:
        report = {"model": args.model, "dtype": args.dtype, "device": args.device,
                  "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(),
                  "cpu_count": os.cpu_count(), "load_average_after": os.getloadavg(),
                  "limit": args.limit, "suite": args.suite, "tasks": rows}
        from a3duck.files import atomic_write_text

        atomic_write_text(args.output, json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
