"""Peak memory of reading + validating + tokenising training data: stream vs in memory.

Each measurement runs in a fresh subprocess (peak RSS is per process): it writes N
Open-Platypus-shaped rows to a JSONL file, then reads all of them through
``a3duck.dataset.prepare_stream`` (iterating the IterableDataset to its end) or
``prepare_dataset`` (the in-memory path), and reports the peak resident set size.

Usage: python bench/stream_memory.py --rows 2000,20000 [--tokenizer DIR] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import common  # noqa: F401 - puts the repository first on sys.path, Hub offline


def write_rows(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"instruction": f"Explain item {i} of the list in two sentences.",
                                  "input": "", "output": f"Item {i} is " + "a small detail. " * 12})
                      + "\n" for i in range(n))


def measure(mode: str, rows: int, tokenizer: str) -> dict:
    from a3duck import dataset
    from a3duck.config import TrainConfig
    from a3duck.models import load_tokenizer

    tok = load_tokenizer(tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.jsonl"
        write_rows(path, rows)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        config = TrainConfig(data=str(path), streaming=mode == "stream", max_steps=1,
                             cutoff_len=512)
        if mode == "stream":
            ds, report, _ = dataset.prepare_stream(config, tok)
            tokens = sum(len(r["input_ids"]) for r in ds)
        else:
            ds, report, _ = dataset.prepare_dataset(config, tok)
            tokens = sum(len(r) for r in ds["input_ids"])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"mode": mode, "rows": rows, "kept": report.kept, "tokens": tokens,
            "rss_before_mib": before / 1024, "peak_rss_mib": peak / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="2000,20000")
    parser.add_argument("--modes", default="stream,memory")
    parser.add_argument("--tokenizer", help="tokenizer folder (default: the embedded model)")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tokenizer is None:
        from a3duck import embedded

        args.tokenizer = str(embedded.model_dir())
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]), args.tokenizer)))
        return 0
    results = []
    for mode in args.modes.split(","):
        for n in args.rows.split(","):
            out = subprocess.run([sys.executable, __file__, "--child", mode, n, "--tokenizer",
                                  args.tokenizer], capture_output=True, text=True, check=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
