"""Benchmark: N concurrent chats over base + 2 IA3 adapters, mixed batches vs one at a time.

One base model with two IA3 adapters attached side by side
(:class:`a3duck.multi_adapter.MultiAdapterModel`; vectors perturbed so they are not the
identity). N chat prompts are spread round-robin over ``base``, ``a`` and ``b`` and answered
greedily in two ways, interleaved round by round:

- ``mixed``: the Space's scheduler (:class:`a3duck.space.scheduler.Scheduler`) with all N
  requests waiting at once: they are decoded together in one left-padded mixed-adapter batch;
- ``serial``: what the old adapter on/off gate allowed: requests of one adapter mode after the
  other, each request alone (``generate`` with batch 1, the Space's ``stream_generate``).

Reported: total new tokens / wall seconds for each, the ratio, and whether every answer text is
the same in both (greedy decoding; in fp32 they must be; reduced precision may flip near-ties).

    python bench/serve.py --chats 12 --new-tokens 32 --output bench_serve.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

NAMES = ("base", "a", "b")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_model_arguments(p)
    p.add_argument("--chats", type=int, default=12, help="concurrent chat requests")
    p.add_argument("--new-tokens", type=int, default=32, help="tokens generated per answer")
    p.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    return p.parse_args(argv)


def write_adapter(base, folder: Path, seed: int) -> Path:
    """A PEFT-named IA3 vector file for k/v (out) and down_proj (in), perturbed around 1."""
    import torch
    from safetensors.torch import save_file

    from a3duck import adapter_folder

    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in base.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("k_proj", "v_proj", "down_proj"):
            shape = (1, module.in_features) if leaf == "down_proj" else (module.out_features, 1)
            tensors[f"base_model.model.{name}.ia3_l"] = 1 + 0.2 * torch.randn(shape, generator=gen)
    folder.mkdir(parents=True)
    save_file(tensors, str(folder / adapter_folder.ADAPTER_WEIGHTS))
    return folder


def prompts(args, tokenizer, n: int) -> list[list[int]]:
    """Real instructions in the Alpaca template (real weights) or random ids (shape runs)."""
    import torch

    if args.model_shape:
        gen = torch.Generator().manual_seed(0)
        vocab = common.vocab_size(args, tokenizer)
        return [torch.randint(3, vocab, (24 + 8 * (i % 4),), generator=gen).tolist()
                for i in range(n)]
    from a3duck.prompts import ALPACA

    rows, _ = common.sample_rows(common.default_sources(), n)
    return [tokenizer(ALPACA.render(r["instruction"], r["input"]))["input_ids"][-256:]
            for r in rows]


def run_mixed(scheduler, jobs, settings) -> tuple[list[str], int, float]:
    from a3duck.space.scheduler import Row

    start = time.perf_counter()
    rows = scheduler.submit([Row(ids, name, settings) for name, ids in jobs])
    texts = [list(scheduler.follow(row))[-1] for row in rows]
    return texts, sum(r.new_tokens for r in rows), time.perf_counter() - start


def run_serial(multi, tokenizer, jobs, settings) -> tuple[list[str], int, float]:
    from a3duck.generation import Stats, stream_generate

    texts, tokens = [None] * len(jobs), 0
    start = time.perf_counter()
    for name in NAMES:  # one adapter mode after the other, as the gate switched modes
        for i, (row_name, ids) in enumerate(jobs):
            if row_name != name:
                continue
            stats = Stats()
            with multi.select(name) as model:
                texts[i] = list(stream_generate(model, tokenizer, ids, settings, (), stats))[-1]
            tokens += stats.new_tokens
    return texts, tokens, time.perf_counter() - start


def main(argv=None) -> int:
    import torch

    from a3duck.generation import Settings
    from a3duck.multi_adapter import AdapterSource, MultiAdapterModel
    from a3duck.space.scheduler import Scheduler

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = common.load_tokenizer(args)
    base = common.build_base(args)
    work = Path(tempfile.mkdtemp(prefix="a3duck-bench-serve-"))
    sources = [AdapterSource(n, n, write_adapter(base, work / n, seed=i))
               for i, n in enumerate(NAMES[1:], start=1)]
    multi = MultiAdapterModel(base, sources)
    scheduler = Scheduler(multi, tokenizer, max_batch=args.chats, inline=False)
    jobs = [(NAMES[i % len(NAMES)], ids) for i, ids in enumerate(prompts(args, tokenizer,
                                                                        args.chats))]
    settings = Settings.checked(max_new_tokens=args.new_tokens, temperature=0, top_p=1,
                                top_k=0, repetition_penalty=1)
    run_mixed(scheduler, jobs[:2], Settings.checked(max_new_tokens=2, temperature=0, top_p=1,
                                                    top_k=0, repetition_penalty=1))  # warm-up
    timings = {"mixed": [], "serial": []}
    texts = {}
    for _ in range(args.rounds):
        texts["mixed"], tok_m, sec_m = run_mixed(scheduler, jobs, settings)
        timings["mixed"].append(tok_m / sec_m)
        texts["serial"], tok_s, sec_s = run_serial(multi, tokenizer, jobs, settings)
        timings["serial"].append(tok_s / sec_s)
    equal = sum(a == b for a, b in zip(texts["mixed"], texts["serial"]))
    mixed, serial = common.median(timings["mixed"]), common.median(timings["serial"])
    row = {"model": common.model_label(args), "chats": args.chats, "new_tokens": args.new_tokens,
           "dtype": str(common.torch_dtype(args)).removeprefix("torch."),
           "mixed_tokens_per_s": mixed, "serial_tokens_per_s": serial, "ratio": mixed / serial,
           "equal_texts": f"{equal}/{len(jobs)}", "batches": scheduler.batches[1:]}
    common.print_table([row], [("model", "model", "s"), ("chats", "chats", "d"),
                               ("mixed_tokens_per_s", "mixed tok/s", ".1f"),
                               ("serial_tokens_per_s", "one at a time tok/s", ".1f"),
                               ("ratio", "ratio", ".2f"), ("equal_texts", "equal texts", "s")])
    common.write_json(args.output, {"machine": common.machine(args), "result": row,
                                    "rounds": timings})
    return 0 if equal == len(jobs) or common.torch_dtype(args) != torch.float32 else 1


if __name__ == "__main__":
    raise SystemExit(main())
