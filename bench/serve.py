"""Benchmark: serving 1, 10, 100, 1,000 IA3 adapters on one base, against the base alone.

One load, fixed concurrency: ``--concurrency`` clients, each sending its next request when its
last one is answered, ``--requests`` in all; each request names an adapter drawn at random
(seeded) from the K held, real instruction prompts (Alpaca template, cut to ``--prompt-tokens``),
greedy, ``--new-tokens`` per answer. For each K the same load is served by
(bench/serve_systems.py):

- ``engine``: a3duck's serving engine (continuous batching, an adapter per row);
- ``scheduler``: the Space's earlier batch-boundary scheduler (mixed adapters per batch);
- ``peft``: one PeftModel holding the K adapters, ``set_adapter`` per batch of one adapter's
  waiting requests (up to ``--peft-max`` adapters: loading more into PEFT takes too long here);

and once, before and after, by the engine on the base alone (no adapter banks at all): the
reference for "adapter #1000 costs nothing". Reported per run: tokens/s, requests/s, time to
first token p50/p95, inter-token latency p50, and for the engine the bytes the K adapters take in
memory (bank tensors) against their vectors' size; answers of engine, scheduler and PEFT are
compared text for text (greedy fp32: they must be equal).

    python bench/serve.py --adapters 1,10,100,1000 --output bench_serve.json
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import serve_systems as systems


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_model_arguments(p)
    p.add_argument("--adapters", default="1,10,100,1000",
                   help="comma-separated adapter counts K to serve (default 1,10,100,1000)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (clients)")
    p.add_argument("--requests", type=int, default=32, help="requests per run")
    p.add_argument("--new-tokens", type=int, default=16, help="tokens generated per answer")
    p.add_argument("--prompt-tokens", type=int, default=96,
                   help="prompts are cut to their last N tokens")
    p.add_argument("--max-batch", type=int, default=16, help="rows decoded together at most")
    p.add_argument("--peft-max", type=int, default=100,
                   help="run the PEFT baseline only up to this many adapters")
    p.add_argument("--systems", default="engine,scheduler,peft",
                   help="which ways to serve each K (engine, scheduler, peft)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    return p.parse_args(argv)


def write_adapters(base, folder: Path, count: int) -> list[Path]:
    """``count`` PEFT IA3 folders (k/v out, down_proj in), vectors 1 + 0.2 * N(0, 1), seeded."""
    import torch
    from peft import IA3Config
    from safetensors.torch import save_file

    from a3duck import adapter_folder

    targets = [(name, module) for name, module in base.named_modules()
               if name.rsplit(".", 1)[-1] in ("k_proj", "v_proj", "down_proj")]
    config = IA3Config(task_type="CAUSAL_LM", target_modules=["k_proj", "v_proj", "down_proj"],
                       feedforward_modules=["down_proj"])
    folders = []
    for i in range(count):
        gen = torch.Generator().manual_seed(i)
        tensors = {}
        for name, module in targets:
            shape = ((1, module.in_features) if name.endswith("down_proj")
                     else (module.out_features, 1))
            tensors[f"base_model.model.{name}.ia3_l"] = 1 + 0.2 * torch.randn(shape, generator=gen)
        out = folder / f"a{i:04d}"
        out.mkdir(parents=True)
        save_file(tensors, str(out / adapter_folder.ADAPTER_WEIGHTS))
        config.save_pretrained(str(out))
        folders.append(out)
    return folders


def prompts(args, tokenizer, n: int) -> list[list[int]]:
    """Real instructions in the Alpaca template (real weights) or random ids (shape runs)."""
    import torch

    if args.model_shape:
        gen = torch.Generator().manual_seed(0)
        vocab = common.vocab_size(args, tokenizer)
        return [torch.randint(3, vocab, (args.prompt_tokens // 2 + 8 * (i % 4),),
                              generator=gen).tolist() for i in range(n)]
    from a3duck.prompts import ALPACA

    rows, _ = common.sample_rows(common.default_sources(), n)
    return [tokenizer(ALPACA.render(r["instruction"], r["input"]))["input_ids"]
            [-args.prompt_tokens:] for r in rows]


def jobs_for(count: int, texts: list[list[int]], new_tokens: int) -> list[systems.Job]:
    """The load for K adapters: each request's adapter drawn at random (seeded by K)."""
    rng = random.Random(count)
    picks = [rng.randrange(count) for _ in texts] if count else [-1] * len(texts)
    return [systems.Job(f"a{k:04d}" if k >= 0 else "base", k + 1, ids, new_tokens)
            for k, ids in zip(picks, texts)]


def bank_bytes(multi) -> int:
    return sum(t.numel() * t.element_size() for bank in multi.banks.values()
               for t in (bank.in_scales, bank.out_scales) if t is not None)


def run_base(args, tokenizer, texts) -> dict:
    from a3duck.multi_adapter import MultiAdapterModel

    multi = MultiAdapterModel(common.build_base(args), [])
    serve = systems.engine_system(multi, tokenizer, args.max_batch)
    jobs = jobs_for(0, texts, args.new_tokens)
    systems.drive(serve, jobs[:args.concurrency], args.concurrency)  # warm-up
    answers, wall = systems.drive(serve, jobs, args.concurrency)
    serve.close()
    return {"adapters": 0, "system": "base alone", **systems.summary(answers, wall)}


def run_count(args, tokenizer, texts, folders, count: int, wanted: set[str]) -> list[dict]:
    """The rows of one K: engine (with memory), scheduler, PEFT (each where wanted)."""
    from a3duck.multi_adapter import AdapterSource, MultiAdapterModel

    jobs = jobs_for(count, texts, args.new_tokens)
    rows, answers = [], {}
    rss = common.rss_bytes()
    multi = MultiAdapterModel(common.build_base(args),
                              [AdapterSource(f.name, f.name, f) for f in folders[:count]])
    memory = {"held_bytes": bank_bytes(multi), "rss_delta_bytes": common.rss_bytes() - rss,
              "vector_bytes": count * sum(t.numel() * 4 for t in _first_vectors(folders))}
    for name, make in (("engine", systems.engine_system), ("scheduler", systems.scheduler_system)):
        if name in wanted:
            serve = make(multi, tokenizer, args.max_batch)
            systems.drive(serve, jobs[:args.concurrency], args.concurrency)  # warm-up
            answers[name], wall = systems.drive(serve, jobs, args.concurrency)
            getattr(serve, "close", lambda: None)()
            rows.append({"adapters": count, "system": name,
                         **systems.summary(answers[name], wall),
                         **(memory if name == "engine" else {})})
    del multi
    gc.collect()
    if "peft" in wanted and count <= args.peft_max:
        serve = systems.peft_system(_peft_model(args, folders[:count]), tokenizer,
                                    args.max_batch)
        systems.drive(serve, jobs[:args.concurrency], args.concurrency)  # warm-up
        answers["peft"], wall = systems.drive(serve, jobs, args.concurrency)
        rows.append({"adapters": count, "system": "peft", **systems.summary(answers["peft"],
                                                                            wall)})
    for row in rows:
        if "engine" in answers and row["system"] != "engine":
            same = sum(_same(a, b) for a, b in zip(answers["engine"], answers[row["system"]]))
            row["equal_to_engine"] = f"{same}/{len(jobs)}"
    return rows


def _same(a: systems.Answer, b: systems.Answer) -> bool:
    """The same tokens where both report them (PEFT), else the same text (the Space's scheduler
    streams text only, and trims the answer's ends)."""
    if a.ids is not None and b.ids is not None:
        return a.ids == b.ids
    return a.text.strip() == b.text.strip()


def _first_vectors(folders):
    from a3duck.adapter_folder import ia3_vectors

    return list(ia3_vectors(folders[0]).values())


def _peft_model(args, folders):
    from peft import PeftModel

    model = PeftModel.from_pretrained(common.build_base(args), str(folders[0]),
                                      adapter_name=folders[0].name)
    for folder in folders[1:]:
        model.load_adapter(str(folder), adapter_name=folder.name)
    return model.eval()


COLUMNS = [("adapters", "adapters", "d"), ("system", "system", "s"),
           ("tokens_per_s", "tok/s", ".1f"), ("vs_base", "vs base", ".2f"),
           ("requests_per_s", "req/s", ".2f"), ("ttft_p50_ms", "TTFT p50 ms", ".0f"),
           ("ttft_p95_ms", "TTFT p95 ms", ".0f"), ("itl_p50_ms", "ITL p50 ms", ".0f"),
           ("held_mb", "held MB", ".1f"), ("vector_mb", "vectors MB", ".1f"),
           ("equal_to_engine", "equal to engine", "s")]


def main(argv=None) -> int:
    import torch

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    counts = [int(c) for c in args.adapters.split(",") if c.strip()]
    wanted = {s.strip() for s in args.systems.split(",") if s.strip()}
    tokenizer = common.load_tokenizer(args)
    texts = prompts(args, tokenizer, args.requests)
    work = Path(tempfile.mkdtemp(prefix="a3duck-bench-serve-"))
    try:
        folders = write_adapters(common.build_base(args), work, max(counts))
        rows = [run_base(args, tokenizer, texts)]
        for count in counts:
            rows += run_count(args, tokenizer, texts, folders, count, wanted)
        rows.append(run_base(args, tokenizer, texts))  # again: drift over the run shows
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = common.median([r["tokens_per_s"] for r in rows if r["system"] == "base alone"])
    for row in rows:
        row["vs_base"] = row["tokens_per_s"] / base
        for key in ("held", "vector"):
            if f"{key}_bytes" in row:
                row[f"{key}_mb"] = row[f"{key}_bytes"] / 2**20
    common.print_table(rows, COLUMNS)
    common.write_json(args.output, {"machine": common.machine(args), "settings": {
        k: getattr(args, k) for k in ("concurrency", "requests", "new_tokens", "prompt_tokens",
                                      "max_batch", "threads")}, "rows": rows})
    unequal = [r for r in rows if r.get("equal_to_engine", "1/1").split("/")[0]
               != r.get("equal_to_engine", "1/1").split("/")[1]]
    return 1 if unequal and common.torch_dtype(args) == torch.float32 else 0


if __name__ == "__main__":
    raise SystemExit(main())
