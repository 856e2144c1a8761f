"""`bench/eval.py --suite`: the whole leaderboard suite, lm-eval's ``hf`` against ``a3duck``.

The requests are the ones ``a3duck eval`` sends: lm-eval's own task objects built from the
``--data-dir`` files (ARC-25, HellaSwag-10, MMLU-5 per subject, TruthfulQA mc2), the same
``--limit`` for both backends (per task; per subject for MMLU), the leaderboard few-shot seed.
Both backends run in one process on the same weights, interleaved chunk by chunk (an MMLU
subject, or a share of a task's documents) so load changes on a shared machine hit both alike.
Reported per task and for the suite: wall time of each backend and their ratio, tokens a plain
per-request run reads against the tokens ``a3duck`` read, the largest |Δ log-likelihood|,
is_greedy disagreements, and each backend's leaderboard metric (lm-eval's own process_results;
MMLU the plain mean over subjects).
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from pathlib import Path

import common

from a3duck.evaluation.leaderboard import (
    FEWSHOT_SEED,
    LEADERBOARD_TASKS,
    TASK_ORDER,
    per_subject,
    subject_of,
)


def build(data_dir: Path, benches: list[str], limit: int, subjects: list[str] | None,
          work: Path) -> dict[str, list]:
    """Per benchmark: [(lm-eval task, its instances)] (one entry per MMLU subject)."""
    from a3duck.evaluation import runner

    p = runner.plan(benches, data_dir, work)
    out: dict[str, list] = defaultdict(list)
    for bench, names in p.names.items():
        for name in names:
            if subjects and per_subject(bench) and subject_of(bench, name) not in subjects:
                continue
            task = p.objects[name]
            task.set_fewshot_seed(seed=FEWSHOT_SEED)
            task.build_all_requests(limit=limit, rank=0, world_size=1)
            out[bench].append((task, list(task.instances)))
    return out


def _chunks(entries: list, rounds: int) -> list[list]:
    """Lists of instances: one per MMLU subject, else ``rounds`` shares of whole documents."""
    if len(entries) > 1:
        return [instances for _, instances in entries]
    _, instances = entries[0]
    docs = sorted({i.doc_id for i in instances})
    per = max(1, -(-len(docs) // rounds))
    return [[i for i in instances if i.doc_id in set(docs[s:s + per])]
            for s in range(0, len(docs), per)]


def metric(bench: str, entries: list, scores: dict) -> float:
    """The leaderboard metric from lm-eval's own process_results (MMLU: mean over subjects)."""
    key = LEADERBOARD_TASKS[bench].metric
    per_task = []
    for task, instances in entries:
        by_doc = defaultdict(list)
        for inst in sorted(instances, key=lambda i: (i.doc_id, i.idx)):
            by_doc[inst.doc_id].append(inst)
        values = [task.process_results(group[0].doc, [scores[id(i)] for i in group])[key]
                  for group in by_doc.values()]
        per_task.append(sum(values) / len(values))
    return sum(per_task) / len(per_task)


def run_bench(bench: str, entries: list, hf, fast, rounds: int) -> dict:
    seconds = {"hf": 0.0, "a3duck": 0.0}
    cpu = {"hf": 0.0, "a3duck": 0.0}  # this process's CPU time: less sensitive to other jobs
    scores: dict[str, dict] = {"hf": {}, "a3duck": {}}
    fast.token_counts.clear()
    for n, chunk in enumerate(_chunks(entries, rounds)):
        order = (("hf", hf), ("a3duck", fast)) if n % 2 == 0 else (("a3duck", fast), ("hf", hf))
        for name, lm in order:
            began, began_cpu = time.perf_counter(), time.process_time()
            answers = lm.loglikelihood(chunk, disable_tqdm=True)
            seconds[name] += time.perf_counter() - began
            cpu[name] += time.process_time() - began_cpu
            scores[name].update({id(i): a for i, a in zip(chunk, answers, strict=True)})
    plain = sum(c[0] for c in fast.token_counts.values())
    read = sum(c[1] for c in fast.token_counts.values())
    pairs = [(scores["hf"][k], scores["a3duck"][k]) for k in scores["hf"]]
    return {
        "task": bench, "num_fewshot": LEADERBOARD_TASKS[bench].num_fewshot,
        "tasks": len(entries), "docs": sum(len({i.doc_id for i in inst}) for _, inst in entries),
        "requests": len(pairs), "hf_seconds": round(seconds["hf"], 2),
        "a3duck_seconds": round(seconds["a3duck"], 2),
        "speedup": round(seconds["hf"] / seconds["a3duck"], 2),
        "hf_cpu_seconds": round(cpu["hf"], 2), "a3duck_cpu_seconds": round(cpu["a3duck"], 2),
        "cpu_speedup": round(cpu["hf"] / cpu["a3duck"], 2),
        "tokens_plain": plain, "tokens_a3duck": read, "tokens_ratio": round(plain / read, 2),
        "max_abs_delta_loglik": max(abs(a[0] - b[0]) for a, b in pairs),
        "is_greedy_mismatches": sum(a[1] != b[1] for a, b in pairs),
        "metric": LEADERBOARD_TASKS[bench].metric,
        "hf": metric(bench, entries, scores["hf"]),
        "a3duck": metric(bench, entries, scores["a3duck"]),
    }


def suite_row(rows: list[dict]) -> dict:
    hf = sum(r["hf_seconds"] for r in rows)
    fast = sum(r["a3duck_seconds"] for r in rows)
    hf_cpu = sum(r["hf_cpu_seconds"] for r in rows)
    fast_cpu = sum(r["a3duck_cpu_seconds"] for r in rows)
    plain = sum(r["tokens_plain"] for r in rows)
    read = sum(r["tokens_a3duck"] for r in rows)
    return {"task": "suite", "num_fewshot": None, "tasks": sum(r["tasks"] for r in rows),
            "docs": sum(r["docs"] for r in rows), "requests": sum(r["requests"] for r in rows),
            "hf_seconds": round(hf, 2), "a3duck_seconds": round(fast, 2),
            "speedup": round(hf / fast, 2), "hf_cpu_seconds": round(hf_cpu, 2),
            "a3duck_cpu_seconds": round(fast_cpu, 2), "cpu_speedup": round(hf_cpu / fast_cpu, 2),
            "tokens_plain": plain, "tokens_a3duck": read,
            "tokens_ratio": round(plain / read, 2),
            "max_abs_delta_loglik": max(r["max_abs_delta_loglik"] for r in rows),
            "is_greedy_mismatches": sum(r["is_greedy_mismatches"] for r in rows),
            "metric": "mean", "hf": sum(r["hf"] for r in rows) / len(rows),
            "a3duck": sum(r["a3duck"] for r in rows) / len(rows)}


COLUMNS = [("task", "task", ""), ("docs", "docs", ","), ("requests", "requests", ","),
           ("hf_seconds", "hf s", ".1f"), ("a3duck_seconds", "a3duck s", ".1f"),
           ("speedup", "speed-up", ".2f"), ("cpu_speedup", "CPU-time speed-up", ".2f"),
           ("tokens_plain", "tokens, per request", ","),
           ("tokens_a3duck", "tokens, a3duck", ","), ("tokens_ratio", "tokens ratio", ".2f"),
           ("max_abs_delta_loglik", "max |Δ loglik|", ".1e"),
           ("is_greedy_mismatches", "is_greedy diffs", "d"), ("hf", "metric hf", ".4f"),
           ("a3duck", "metric a3duck", ".4f")]


def run(args, hf, fast) -> list[dict]:
    """The suite rows (each benchmark, then the whole suite)."""
    benches = [b for b in TASK_ORDER if b in args.suite_tasks]
    with tempfile.TemporaryDirectory(prefix="a3duck-bench-") as work:
        built = build(args.data_dir, benches, args.limit, args.mmlu_subjects, Path(work))
        warm = built[benches[0]][0][1][:2]
        for lm in (hf, fast):  # first calls pay one-off allocation costs
            lm.loglikelihood(warm, disable_tqdm=True)
        rows = [run_bench(b, built[b], hf, fast, args.rounds) for b in benches if built[b]]
    rows.append(suite_row(rows))
    common.print_table(rows, COLUMNS)
    return rows
