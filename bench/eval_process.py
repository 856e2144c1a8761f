"""Benchmark: whole ``a3duck eval`` processes, ``--backend hf`` against ``--backend a3duck``.

What a user waits for: start-up, lm-eval's task building, model loading, scoring and writing
the results file. Each round runs the same ``a3duck eval`` command line once per backend as
a subprocess (the order alternates from round to round, so that load changes on a shared machine
hit both alike) and records its wall time and CPU time (user + system of the child). Reports the
median of each backend, the ratio, and whether every result row (task, value) is identical.

    python bench/eval_process.py --tasks mmlu --limit 5 --rounds 2 --output bench_process.json

Extra ``a3duck eval`` flags go after ``--`` (e.g. ``-- --batch-size 4``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

from a3duck.evaluation.leaderboard import MMLU

BACKENDS = ("hf", "a3duck")
COLUMNS = [("backend", "backend", ""), ("wall_s", "wall s (median)", ".1f"),
           ("cpu_s", "CPU s (median)", ".1f"), ("speedup", "× hf (wall)", ".2f"),
           ("cpu_speedup", "× hf (CPU)", ".2f"), ("walls", "wall s per round", "")]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(backend: str, args, extra: list[str], work: Path, n: int) -> dict:
    """One ``a3duck eval`` process; its wall and CPU seconds and its result rows."""
    out = work / f"{backend}-{n}.json"
    cmd = [sys.executable, "-m", "a3duck", "eval", "--tasks", args.tasks, "--limit",
           str(args.limit), "--data-dir", str(args.data_dir), "--dtype", args.dtype,
           "--backend", backend, "--output", str(out), *extra]
    began, began_cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=os.environ | {
        "HF_HUB_OFFLINE": "1"})
    wall, cpu = time.perf_counter() - began, _children_cpu() - began_cpu
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    rows = json.loads(out.read_text())["results"]
    print(f"round {n}, {backend}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    return {"wall": wall, "cpu": cpu,
            "values": {(r["model"], r["task"]): r["value"] for r in rows}}


def summarise(runs: dict[str, list[dict]]) -> list[dict]:
    med = {b: (common.median([r["wall"] for r in runs[b]]),
               common.median([r["cpu"] for r in runs[b]])) for b in BACKENDS}
    return [{"backend": b, "wall_s": med[b][0], "cpu_s": med[b][1],
             "speedup": med["hf"][0] / med[b][0], "cpu_speedup": med["hf"][1] / med[b][1],
             "walls": " / ".join(f"{r['wall']:.1f}" for r in runs[b])} for b in BACKENDS]


def parse_args(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default=MMLU.name, help=f"a3duck eval --tasks (default: {MMLU.name})")
    p.add_argument("--limit", type=int, default=5,
                   help="documents per task (per MMLU subject); default 5")
    p.add_argument("--data-dir", type=Path, default=common.ROOT.parent / "shared" / "data",
                   help="benchmark files for a3duck eval --data-dir (default ../shared/data)")
    p.add_argument("--dtype", default="fp32", choices=("auto", "fp32", "bf16"),
                   help="a3duck eval --dtype for both (default fp32: results must be equal)")
    p.add_argument("--rounds", type=int, default=2,
                   help="runs per backend; the order alternates per round (default 2)")
    p.add_argument("--output", type=Path, help="write the results as JSON here")
    return p.parse_args(argv), extra


def main(argv=None) -> int:
    args, extra = parse_args(argv)
    runs: dict[str, list[dict]] = {b: [] for b in BACKENDS}
    with tempfile.TemporaryDirectory(prefix="a3duck-bench-process-") as work:
        for n in range(args.rounds):
            for backend in (BACKENDS if n % 2 == 0 else BACKENDS[::-1]):
                runs[backend].append(run_once(backend, args, extra, Path(work), n))
    values = [r["values"] for b in BACKENDS for r in runs[b]]
    identical = all(v == values[0] for v in values)
    rows = summarise(runs)
    common.print_table(rows, COLUMNS)
    print(f"result rows identical across every run: {identical}")
    shown = [common.public_path(a) if Path(a).exists() else a for a in extra]
    common.write_json(args.output, {
        "command": f"a3duck eval --tasks {args.tasks} --limit {args.limit} --dtype {args.dtype} "
                   f"--data-dir {common.public_path(args.data_dir)} {' '.join(shown)}".strip(),
        "rounds": args.rounds, "cpu_count": os.cpu_count(), "load_average_after": os.getloadavg(),
        "identical_results": identical, "backends": rows,
        "results": {f"{m}/{t}": v for (m, t), v in values[0].items()}})
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
