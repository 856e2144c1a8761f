"""Benchmark: training speed of the original A3Duck recipe vs a3duck's fast path vs Platypus LoRA.

Every variant trains one epoch over the SAME examples (sampled evenly from the demo data and the
instruction set) through a3duck's own trainer wiring (``a3duck.train._build_trainer``: TRL's
SFTTrainer, completion-only loss):

- ``original``: the published recipe: micro-batch 1, padded batches, no packing, IA3;
- ``fast``: a3duck's fast path: ``packing: true`` (best-fit-decreasing packing into rows of
  ``--pack-len`` tokens, padding-free: one flattened row with per-example position ids), IA3;
- ``lora``: Platypus LoRA (r=16, alpha=16, dropout 0.05, q/k/v/o) with the original batching.

Each measurement runs in a fresh worker process (so peak memory is per variant) and the variants
are interleaved round by round (machines are noisy: compare the ratios). Throughput counts real
tokens: ``tokens/s`` = non-padding input tokens the model processes, ``loss tokens/s`` = answer
tokens the loss sees. Before training, each worker scores the first ``--check-examples`` examples
with its own collator and model: ``check_loss`` must agree across variants (packing is exact).

    python bench/train.py --examples 64 --steps 4 --rounds 3 --output bench_train.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

VARIANTS = ("original", "fast", "lora")
LORA = {"r": 16, "lora_alpha": 16, "lora_dropout": 0.05,
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_model_arguments(p)
    p.add_argument("--examples", type=int, default=64, help="examples each variant trains on")
    p.add_argument("--steps", type=int, default=4,
                   help="optimizer steps of the original recipe (batch size = examples / steps)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds of all variants")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    p.add_argument("--cutoff-len", type=int, default=4096,
                   help="maximum tokens per example (the recipe's 4096)")
    p.add_argument("--pack-len", type=int, default=512,
                   help="tokens per packed row of the fast path (>= the longest example keeps "
                        "the data identical)")
    p.add_argument("--data", type=Path, nargs="+",
                   default=common.default_sources(),
                   help="instruction files to sample from (missing ones are skipped)")
    p.add_argument("--check-examples", type=int, default=8,
                   help="examples scored before training to compare losses across variants")
    p.add_argument("--threads", type=int, help="torch CPU threads in each worker")
    p.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--data-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.examples < 1 or args.steps < 1 or args.examples % args.steps:
        p.error(f"--examples ({args.examples}) must be a positive multiple of --steps "
                f"({args.steps})")
    return args


# ----------------------------------------------------------------------------- worker

def variant_config(args, variant: str, out: Path):
    from a3duck.config import TrainConfig

    cuda = str(args.device).startswith("cuda")
    batch = args.examples // args.steps
    fast = variant == "fast"
    return TrainConfig(
        base_model=common.tokenizer_path(args) if args.model_shape else args.model,
        data=str(args.data_file), output_dir=str(out), learning_rate=1e-2, warmup_steps=0,
        lr_scheduler="constant", num_epochs=1, max_steps=-1, save_steps=10**9,
        batch_size=1 if fast else batch, micro_batch_size=1,
        cutoff_len=args.pack_len if fast else args.cutoff_len, packing=fast,
        precision="auto" if cuda else "fp32", device=args.device if cuda else "cpu",
    )


def build_model(args, variant: str, config):
    """The trainable model exactly as a3duck builds it (LoRA: same, with LoraConfig)."""
    from a3duck import models
    from a3duck.train import _build_model

    if variant != "lora" and not args.model_shape:
        return _build_model(config, models.resolve_base_model(args.model))
    base = common.build_base(args)
    base.config.use_cache = False  # as a3duck.train: packed rows need the position-id mask
    if variant != "lora":
        return models.attach_ia3(base)
    from peft import LoraConfig, get_peft_model

    return get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", bias="none", **LORA))


def check_loss(trainer, rows, packed: bool) -> tuple[float, int]:
    """(summed loss, loss tokens) over ``rows`` batched as this variant's trainer batches them."""
    import torch

    model, device = trainer.model.eval(), trainer.args.device
    batches = [rows] if packed else [[r] for r in rows]
    total, count = 0.0, 0
    with torch.no_grad():
        for rows_ in batches:
            batch = trainer.data_collator(rows_)
            labels = batch["labels"].to(device)
            inputs = {k: batch[k].to(device) for k in ("input_ids", "attention_mask",
                                                        "position_ids") if k in batch}
            logits = model(**inputs, use_cache=False).logits.float()
            total += torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), reduction="sum",
                ignore_index=-100).item()
            count += int((labels[:, 1:] != -100).sum())
    model.train()
    return total, count


def fold_ids(dataset, bound: int | None):
    """Token ids folded into a random-init shape's vocabulary (speed depends on lengths only)."""
    if bound is None:
        return dataset
    return dataset.map(lambda r: {"input_ids": [i % bound for i in r["input_ids"]]})


def run_worker(args) -> dict:
    import torch

    from a3duck import dataset as dataset_mod
    from a3duck.train import _build_trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.result.parent / f"worker-{args.worker}"  # removed by main() once done
    config = variant_config(args, args.worker, work)
    tokenizer = common.load_tokenizer(args)
    dataset, report, _ = dataset_mod.prepare_dataset(config, tokenizer)
    dataset = fold_ids(dataset, common.vocab_size(args, tokenizer))
    rows = [dataset[i] for i in range(min(args.check_examples, len(dataset)))]
    model = build_model(args, args.worker, config)
    trainer = _build_trainer(config, model, tokenizer, dataset, work / "ck")
    loss_sum, loss_count = check_loss(trainer, rows, packed=config.packing)
    cuda = str(args.device).startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rss_before = common.rss_bytes()
    common.sync(args.device)
    started = time.perf_counter()
    trainer.train()
    common.sync(args.device)
    wall = time.perf_counter() - started
    history = [{"step": h["step"], "loss": h["loss"]}
               for h in trainer.state.log_history if "loss" in h]
    input_tokens = sum(len(x) for x in dataset["input_ids"])
    loss_tokens = sum(sum(m) for m in dataset["completion_mask"])
    return {
        "variant": args.worker, "wall_seconds": wall, "examples": len(dataset),
        "truncated_examples": report.truncated, "input_tokens": input_tokens,
        "loss_tokens": loss_tokens, "tokens_seen": int(trainer.state.num_input_tokens_seen),
        "tokens_per_second": input_tokens / wall, "loss_tokens_per_second": loss_tokens / wall,
        "optimizer_steps": int(trainer.state.global_step),
        "peak_memory_bytes": (int(torch.cuda.max_memory_allocated()) if cuda
                              else common.peak_rss_bytes()),
        "memory_before_train_bytes": (int(torch.cuda.memory_allocated()) if cuda else rss_before),
        "check_loss_sum": loss_sum, "check_loss_tokens": loss_count,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "loss_history": history,
    }


# ----------------------------------------------------------------------------- orchestrator

def worker_command(args, variant: str, data_file: Path, result: Path) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", variant,
           "--data-file", str(data_file), "--result", str(result),
           "--examples", str(args.examples), "--steps", str(args.steps),
           "--cutoff-len", str(args.cutoff_len), "--pack-len", str(args.pack_len),
           "--check-examples", str(args.check_examples), "--device", args.device,
           "--dtype", args.dtype, "--model", args.model]
    if args.model_shape:
        cmd += ["--model-shape", args.model_shape, "--tokenizer", common.tokenizer_path(args)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return cmd


def run_round(args, variants, data_file: Path, work: Path, rnd: int) -> list[dict]:
    results = []
    for variant in variants:
        result = work / f"{variant}-{rnd}.json"
        proc = subprocess.run(worker_command(args, variant, data_file, result),
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            raise SystemExit(f"variant {variant} failed:\n{proc.stderr[-4000:]}")
        row = {**json.loads(result.read_text()), "round": rnd}
        print(f"round {rnd} {variant}: {row['tokens_per_second']:.0f} tokens/s, "
              f"{row['wall_seconds']:.1f} s, peak {row['peak_memory_bytes'] / 2**30:.2f} GiB",
              file=sys.stderr, flush=True)
        results.append(row)
    return results


def summarise(runs: list[dict], variants) -> list[dict]:
    """Median per variant, with ratios to ``original`` (or to the first variant)."""
    rows = []
    for v in variants:
        mine = [r for r in runs if r["variant"] == v]
        rows.append({
            "variant": v, **{k: mine[0][k] for k in (
                "examples", "input_tokens", "loss_tokens", "optimizer_steps",
                "trainable_parameters", "check_loss_sum", "check_loss_tokens",
                "truncated_examples")},
            "tokens_per_second": common.median([r["tokens_per_second"] for r in mine]),
            "loss_tokens_per_second": common.median([r["loss_tokens_per_second"] for r in mine]),
            "wall_seconds": common.median([r["wall_seconds"] for r in mine]),
            "peak_memory_gib": max(r["peak_memory_bytes"] for r in mine) / 2**30,
            "final_loss": mine[0]["loss_history"][-1]["loss"] if mine[0]["loss_history"] else None,
        })
    ref = next((r for r in rows if r["variant"] == "original"), rows[0])
    by_round = {(r["variant"], r["round"]): r["tokens_per_second"] for r in runs}
    for r in rows:
        # Same-round ratios: both variants saw the same machine load (the median of these is the
        # number to quote on a shared machine).
        r["speedup_per_round"] = [by_round[(r["variant"], k)] / by_round[(ref["variant"], k)]
                                  for v, k in sorted(by_round) if v == r["variant"]
                                  and (ref["variant"], k) in by_round]
        r["speedup_vs_original"] = common.median(r["speedup_per_round"])
        # A pack length below the longest example truncates it: then the variants differ in data.
        r["same_data"] = (r["input_tokens"] == ref["input_tokens"]
                          and r["loss_tokens"] == ref["loss_tokens"])
        r["memory_vs_original"] = r["peak_memory_gib"] / ref["peak_memory_gib"]
        r["check_loss_rel_diff"] = (abs(r["check_loss_sum"] - ref["check_loss_sum"])
                                    / max(abs(ref["check_loss_sum"]), 1e-12))
    return rows


COLUMNS = [("variant", "variant", ""), ("tokens_per_second", "tokens/s", ".0f"),
           ("loss_tokens_per_second", "loss tokens/s", ".0f"),
           ("speedup_vs_original", "× original", ".2f"), ("peak_memory_gib", "peak GiB", ".2f"),
           ("memory_vs_original", "mem × original", ".2f"), ("optimizer_steps", "steps", "d"),
           ("check_loss_rel_diff", "check-loss rel. diff", ".1e"), ("same_data", "same data", "")]


def write_results(args, variants, runs: list[dict], sources: dict) -> list[dict]:
    done = [v for v in variants if any(r["variant"] == v for r in runs)]
    table = summarise(runs, done)
    common.write_json(args.output, {
        "benchmark": "train", "model": common.model_label(args), "sources": sources,
        "settings": {k: getattr(args, k) for k in ("examples", "steps", "rounds", "cutoff_len",
                                                   "pack_len", "device", "dtype", "threads")},
        "machine": common.machine(args), "summary": table, "runs": runs,
    })
    return table


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        common.write_json(args.result, run_worker(args))
        shutil.rmtree(args.result.parent / f"worker-{args.worker}", ignore_errors=True)
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown --variants {unknown}; choose from {list(VARIANTS)}")
    work = Path(tempfile.mkdtemp(prefix="a3duck-bench-train-"))
    rows, sources = common.sample_rows(args.data, args.examples)
    data_file = work / "train.jsonl"
    data_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    runs = []
    for rnd in range(args.rounds):
        runs += run_round(args, variants, data_file, work, rnd)
        table = write_results(args, variants, runs, sources)  # kept if a later round times out
    common.print_table(table, COLUMNS)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
