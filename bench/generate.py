"""Benchmark: generation speed of the base model, the IA3 adapter unmerged and merged.

Three models side by side in one process: ``base``; ``unmerged`` = base + an IA3 adapter (vectors
perturbed so it is not the identity) run through PEFT's wrappers; ``merged`` = the same adapter
folded into the weights (``merge_and_unload``, what ``a3duck merge`` saves). Each is timed with
greedy decoding in each cache mode:

- ``dynamic``: transformers' default DynamicCache, no compilation;
- ``static``: ``cache_implementation="static"`` with ``disable_compile=True``;
- ``compile``: static cache + ``torch.compile`` of the decoding step (transformers' auto-compile;
  forced on CPU through ``CompileConfig``). Compilation time is reported as ``warmup_seconds``.

Time to first token = wall time of ``generate(max_new_tokens=1)`` (prefill + one token); decode
tokens/s = (N - 1) / (t(N) - t(1)). Modes and models are interleaved round by round; medians are
reported with ratios to ``base`` in the same mode. Results checks: merged and unmerged produce the
same tokens, and every mode produces the same tokens as ``dynamic``.

    python bench/generate.py --prompt-tokens 128 --new-tokens 32 --output bench_generate.json
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

MODES = ("dynamic", "static", "compile")
VARIANTS = ("base", "unmerged", "merged")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_model_arguments(p)
    p.add_argument("--prompt-tokens", type=int, default=128, help="prompt length in tokens")
    p.add_argument("--new-tokens", type=int, default=32, help="tokens generated per request")
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    p.add_argument("--modes", default="dynamic,static",
                   help=f"comma-separated cache modes among {', '.join(MODES)} (compile costs "
                        "minutes of compilation on a CPU)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    args = p.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(args.modes) - set(MODES) or not args.modes:
        p.error(f"--modes must be among {', '.join(MODES)}")
    if args.new_tokens < 2 or args.prompt_tokens < 1:
        p.error("--new-tokens must be >= 2 and --prompt-tokens >= 1")
    return args


def build_models(args) -> dict:
    """{variant: model}: base, base + perturbed IA3 (PEFT wrappers), and that adapter merged."""
    import torch

    from a3duck import models

    base = common.build_base(args)
    base.config.use_cache = True
    unmerged = models.attach_ia3(copy.deepcopy(base)).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in unmerged.named_parameters():
            if "ia3_l" in name:
                noise = torch.randn(p.shape, generator=gen).to(p.device, p.dtype)
                p.mul_(1 + 0.1 * noise)
    merged = copy.deepcopy(unmerged).merge_and_unload().eval()
    return {"base": base, "unmerged": unmerged, "merged": merged}


def prompt_ids(args, vocab: int):
    """A real instruction prompt (real weights) or random ids (random-init shape)."""
    import torch

    if args.model_shape:
        gen = torch.Generator().manual_seed(0)
        return torch.randint(3, vocab, (1, args.prompt_tokens), generator=gen).to(args.device)
    from a3duck.prompts import ALPACA

    tok = common.load_tokenizer(args)
    rows, _ = common.sample_rows(common.default_sources(), 16)
    ids: list[int] = []
    for row in rows:
        ids += tok(ALPACA.render(row["instruction"], row["input"]) + row["output"])["input_ids"]
        if len(ids) >= args.prompt_tokens:
            break
    ids = (ids * (args.prompt_tokens // max(len(ids), 1) + 1))[:args.prompt_tokens]
    return torch.tensor([ids], device=args.device)


def mode_kwargs(mode: str, device: str) -> dict:
    if mode == "dynamic":
        return {}
    if mode == "static":
        return {"cache_implementation": "static", "disable_compile": True}
    from transformers import CompileConfig

    cuda = str(device).startswith("cuda")
    config = CompileConfig(fullgraph=False, mode="reduce-overhead" if cuda else "default")
    config._compile_all_devices = True  # transformers' documented switch to compile on a CPU
    return {"cache_implementation": "static", "compile_config": config}


def timed(model, ids, new_tokens: int, kwargs: dict, device) -> tuple[float, list[int]]:
    import torch

    common.sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             do_sample=False, pad_token_id=0, **kwargs)
    common.sync(device)
    return time.perf_counter() - start, out[0, ids.shape[1]:].tolist()


def measure(args, built: dict, ids) -> tuple[list[dict], dict]:
    """Rows per (mode, variant) and the generated tokens of each."""
    samples = {(m, v): {"ttft": [], "full": []} for m in args.modes for v in built}
    tokens, warmup = {}, {}
    for mode in args.modes:  # warm-up (and compilation) outside the timed rounds
        for name, model in built.items():
            warmup[(mode, name)], tokens[(mode, name)] = timed(
                model, ids, args.new_tokens, mode_kwargs(mode, args.device), args.device)
    for rnd in range(args.rounds):
        for mode in args.modes:
            for name, model in built.items():
                kw = mode_kwargs(mode, args.device)
                samples[(mode, name)]["ttft"].append(timed(model, ids, 1, kw, args.device)[0])
                samples[(mode, name)]["full"].append(
                    timed(model, ids, args.new_tokens, kw, args.device)[0])
        print(f"round {rnd} done", file=sys.stderr, flush=True)
    rows = []
    for (mode, name), s in samples.items():
        ttft, full = common.median(s["ttft"]), common.median(s["full"])
        rows.append({"mode": mode, "variant": name, "ttft_seconds": ttft,
                     "decode_tokens_per_second": (args.new_tokens - 1) / max(full - ttft, 1e-9),
                     "warmup_seconds": warmup[(mode, name)]})
    for row in rows:
        ref = next(r for r in rows if r["mode"] == row["mode"] and r["variant"] == "base")
        row["decode_vs_base"] = row["decode_tokens_per_second"] / ref["decode_tokens_per_second"]
        row["ttft_vs_base"] = row["ttft_seconds"] / ref["ttft_seconds"]
        dyn = next(r for r in rows if r["mode"] == "dynamic" and r["variant"] == row["variant"])
        row["decode_vs_dynamic"] = (row["decode_tokens_per_second"]
                                    / dyn["decode_tokens_per_second"]) if dyn else None
    return rows, tokens


def checks(tokens: dict, modes: list[str]) -> dict:
    """Result equality: merged == unmerged per mode; every mode == dynamic per model."""
    out = {f"merged_equals_unmerged[{m}]": tokens[(m, "merged")] == tokens[(m, "unmerged")]
           for m in modes}
    for (mode, name), toks in tokens.items():
        if mode != "dynamic" and ("dynamic", name) in tokens:
            out[f"{mode}_equals_dynamic[{name}]"] = toks == tokens[("dynamic", name)]
    out["adapter_changes_output"] = tokens[(modes[0], "unmerged")] != tokens[(modes[0], "base")]
    return out


COLUMNS = [("mode", "cache", ""), ("variant", "model", ""),
           ("ttft_seconds", "TTFT s", ".3f"), ("decode_tokens_per_second", "decode tok/s", ".1f"),
           ("decode_vs_base", "decode × base", ".3f"),
           ("decode_vs_dynamic", "decode × dynamic", ".2f"), ("warmup_seconds", "warm-up s", ".1f")]


def main(argv=None) -> int:
    import torch

    args = parse_args(argv)
    if "dynamic" not in args.modes:
        args.modes.insert(0, "dynamic")  # the reference for the equality checks
    if args.threads:
        torch.set_num_threads(args.threads)
    built = build_models(args)
    ids = prompt_ids(args, built["base"].config.vocab_size)
    rows, tokens = measure(args, built, ids)
    common.print_table(rows, COLUMNS)
    result_checks = checks(tokens, args.modes)
    print(result_checks)
    common.write_json(args.output, {
        "benchmark": "generate", "model": common.model_label(args),
        "settings": {k: getattr(args, k) for k in ("prompt_tokens", "new_tokens", "rounds",
                                                   "modes", "device", "dtype", "threads")},
        "machine": common.machine(args), "summary": rows, "checks": result_checks,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
