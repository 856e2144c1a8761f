"""Benchmark: training speed of a3duck's demo recipe vs the original Platypus script (and more).

Every variant trains one epoch over the SAME examples (sampled evenly from ``--data``):

- ``reference``: the original script's path, ``bench/reference_platypus.py`` (transformers
  Trainer, DataCollatorForSeq2Seq, micro-batch 1, full-vocabulary logits at every position, IA3
  in place of LoRA), fp32 on a CPU, bf16 on a GPU;
- ``fast``: a3duck's shipped demo recipe (``--recipe``, default recipes/smollm2-demo.yaml) through
  ``a3duck.train``'s wiring: its packing, batch, precision, attention, compile and loss settings
  (``precision: auto`` is bf16 on a CPU with bf16 units). ``fast@IMPL`` forces an attention
  implementation, ``fast+compile`` / ``fast-compile`` force torch.compile on / off;
- ``original``: a3duck's wiring with the published recipe's batching (micro-batch 1, no packing);
- ``lora``: Platypus LoRA (r=16, alpha=16, dropout 0.05, q/k/v/o), original batching.

Each measurement runs in a fresh worker process (so peak memory is per variant) and the variants
are interleaved round by round (machines are noisy: compare the ratios). ``tokens/s`` = non-padding
input tokens over the wall time of the whole ``trainer.train()`` (warm-up and compilation
included); ``loss tokens/s`` = answer tokens the loss sees. Before training, each worker scores
the first ``--check-examples`` examples with its own collator, model, precision and loss code
(the first step's loss on the same examples): ``check_loss`` agrees across variants to fp32
rounding when precisions match, to bf16 rounding otherwise.

    python bench/train.py --variants reference,fast --examples 64 --steps 4 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import reference_platypus
from train_summary import COLUMNS, write_results

VARIANTS = ("reference", "fast", "original", "lora")
VARIANT = re.compile(r"^(?P<name>[a-z]+)(?:@(?P<attn>\w+))?(?P<compile>[+-]compile)?$")
LORA = {"r": 16, "lora_alpha": 16, "lora_dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
DEMO_RECIPE = common.ROOT / "recipes" / "smollm2-demo.yaml"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_model_arguments(p)
    p.add_argument("--examples", type=int, default=64, help="examples each variant trains on")
    p.add_argument("--steps", type=int, default=4,
                   help="optimizer steps of the reference (batch size = examples / steps)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds of all variants")
    p.add_argument("--variants", default="reference,fast", help="comma-separated, of "
                   f"{', '.join(VARIANTS)} (fast@IMPL, fast+compile, fast-compile)")
    p.add_argument("--recipe", type=Path, default=DEMO_RECIPE,
                   help="recipe of the fast variant (its data, steps and output are the bench's)")
    p.add_argument("--fast-precision", choices=("recipe", "auto", "bf16", "fp32"),
                   default="recipe", help="override the recipe's precision (fp32: exactness check)")
    p.add_argument("--cutoff-len", type=int, default=4096,
                   help="maximum tokens per example of the unpacked variants (the recipe's 4096)")
    p.add_argument("--pack-len", type=int,
                   help="tokens per packed row of the fast path (default: the recipe's "
                        "cutoff_len; >= the longest example keeps the data identical)")
    p.add_argument("--learning-rate", type=float, default=1e-2,
                   help="constant learning rate of every variant")
    p.add_argument("--data", type=Path, nargs="+",
                   default=common.default_sources(),
                   help="instruction files to sample from (missing ones are skipped)")
    p.add_argument("--check-examples", type=int, default=8,
                   help="examples scored before training to compare losses across variants")
    p.add_argument("--threads", type=int, help="torch CPU threads in each worker")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--data-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.examples < 1 or args.steps < 1 or args.examples % args.steps:
        p.error(f"--examples ({args.examples}) must be a positive multiple of --steps "
                f"({args.steps})")
    for v in args.variants.split(","):
        m = VARIANT.match(v.strip())
        if not m or m["name"] not in VARIANTS or ((m["attn"] or m["compile"])
                                                  and m["name"] != "fast"):
            p.error(f"unknown variant {v!r}: choose from {', '.join(VARIANTS)}, "
                    "fast@IMPL, fast+compile, fast-compile")
    return args


# ----------------------------------------------------------------------------- worker

def variant_config(args, variant: str, out: Path):
    """The a3duck TrainConfig of an a3duck-wired variant (fast, original, lora)."""
    from a3duck.config import TrainConfig, load_config

    m = VARIANT.match(variant)
    cuda = str(args.device).startswith("cuda")
    common_fields = {
        "base_model": common.tokenizer_path(args) if args.model_shape else args.model,
        "data": str(args.data_file), "output_dir": str(out),
        "learning_rate": args.learning_rate, "warmup_steps": 0, "lr_scheduler": "constant",
        "num_epochs": 1, "max_steps": -1, "save_steps": 10**9,
        "device": args.device if cuda else "cpu", "add_eos_token": True}
    if m["name"] != "fast":
        return TrainConfig(**common_fields, batch_size=args.examples // args.steps,
                           micro_batch_size=1, cutoff_len=args.cutoff_len, packing=False,
                           precision="auto" if cuda else "fp32", compile="never",
                           loss="trl_fused", attn_implementation="sdpa")
    recipe = load_config(args.recipe).replace(**common_fields)
    overrides = {"cutoff_len": args.pack_len, "attn_implementation": m["attn"],
                 "compile": {"+compile": "always", "-compile": "never"}.get(m["compile"]),
                 "precision": None if args.fast_precision == "recipe" else args.fast_precision}
    return recipe.replace(**overrides)


def build_model(args, variant: str, config):
    """The trainable model exactly as a3duck builds it (LoRA: same, with LoraConfig)."""
    from a3duck import fastpath, models
    from a3duck.train import _build_model

    if variant != "lora" and not args.model_shape:
        return _build_model(config, models.resolve_base_model(args.model))
    base = common.build_base(args, fastpath.plan(config).dtype)
    base.config.use_cache = False  # as a3duck.train: packed rows need the position-id mask
    if variant == "lora":
        from peft import LoraConfig, get_peft_model

        return get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", bias="none", **LORA))
    fastpath.set_attention(base, fastpath.plan(config).attn_implementation)
    return models.attach_ia3(base)


def check_loss(trainer, rows, packed: bool) -> tuple[float, int]:
    """(summed loss, loss tokens) over ``rows``, batched, cast and scored as this variant's
    trainer does in its first step (its collator, precision and ``compute_loss``)."""
    import torch

    model, device = trainer.model.eval(), trainer.args.device
    batches = [rows] if packed else [[r] for r in rows]
    total, count = 0.0, 0
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16,
                                         enabled=trainer.args.bf16):
        for rows_ in batches:
            batch = {k: v.to(device) if hasattr(v, "to") else v
                     for k, v in trainer.data_collator(rows_).items()}
            n = int((batch["labels"][:, 1:] != -100).sum())
            total += float(trainer.compute_loss(model, batch)) * n
            count += n
    model.train()
    return total, count


def fold_ids(dataset, bound: int | None):
    """Token ids folded into a random-init shape's vocabulary (speed depends on lengths only)."""
    if bound is None:
        return dataset
    return dataset.map(lambda r: {"input_ids": [i % bound for i in r["input_ids"]],
                                  **({"labels": [i if i < 0 else i % bound for i in r["labels"]]}
                                     if "labels" in r else {})})


def setup_reference(args, work: Path) -> dict:
    """bench/reference_platypus.py's tokenization, model and Trainer on the bench's rows."""
    import datasets

    from a3duck import fastpath

    cuda = str(args.device).startswith("cuda")
    tokenizer = reference_platypus.tokenizer_for(common.load_tokenizer(args))
    rows = [reference_platypus.tokenize_row(tokenizer, r, args.cutoff_len)
            for r in reference_platypus.load_rows(str(args.data_file))]
    dataset = fold_ids(datasets.Dataset.from_list(rows), common.vocab_size(args, tokenizer))
    dtype, _ = fastpath.resolve_precision("auto" if cuda else "fp32", args.device)
    model = reference_platypus.attach_ia3(common.build_base(args, dtype))
    trainer = reference_platypus.build_trainer(
        model, tokenizer, dataset, str(work / "ck"), batch_size=args.examples // args.steps,
        micro_batch_size=1, num_epochs=1, learning_rate=args.learning_rate,
        lr_scheduler="constant", warmup_ratio=0.0, bf16=cuda, use_cpu=not cuda)
    return {"trainer": trainer, "packed": False, "plan": None, "examples": len(rows),
            "check_rows": [dataset[i] for i in range(min(args.check_examples, len(rows)))],
            "truncated": sum(len(r["input_ids"]) >= args.cutoff_len for r in rows),
            "input_tokens": sum(len(r["input_ids"]) for r in rows),
            "loss_tokens": sum(sum(x != -100 for x in r["labels"]) for r in rows)}


def setup_a3duck(args, work: Path) -> dict:
    from a3duck import data as data_mod
    from a3duck import fastpath
    from a3duck.train import _build_trainer

    config = variant_config(args, args.worker, work)
    tokenizer = common.load_tokenizer(args)
    dataset, report = data_mod.prepare_dataset(config, tokenizer)
    dataset = fold_ids(dataset, common.vocab_size(args, tokenizer))
    plan = fastpath.plan(config)
    model = build_model(args, VARIANT.match(args.worker)["name"], config)
    trainer = _build_trainer(config, model, tokenizer, dataset, work / "ck", plan)
    check = [dataset[i] for i in range(min(args.check_examples, len(dataset)))]
    return {"trainer": trainer, "packed": config.packing, "plan": plan.to_dict(),
            "examples": len(dataset), "truncated": report.truncated,
            "check_rows": [{"input_ids": r["input_ids"], "labels": [  # as SFTTrainer labels
                t if m else -100 for t, m in zip(r["input_ids"], r["completion_mask"])]}
                for r in check],
            "loss_tokens": sum(sum(m) for m in dataset["completion_mask"]),
            "input_tokens": sum(len(x) for x in dataset["input_ids"])}


def run_worker(args) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.result.parent / f"worker-{args.worker}"  # removed by main() once done
    setup = (setup_reference if args.worker == "reference" else setup_a3duck)(args, work)
    trainer = setup["trainer"]
    loss_sum, loss_count = check_loss(trainer, setup["check_rows"], packed=setup["packed"])
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
    input_tokens, loss_tokens = setup["input_tokens"], setup["loss_tokens"]
    return {
        "variant": args.worker, "wall_seconds": wall, "examples": setup["examples"],
        "truncated_examples": setup["truncated"], "input_tokens": input_tokens,
        "loss_tokens": loss_tokens, "tokens_seen": int(trainer.state.num_input_tokens_seen),
        "tokens_per_second": input_tokens / wall, "loss_tokens_per_second": loss_tokens / wall,
        "optimizer_steps": int(trainer.state.global_step), "fast_path": setup["plan"],
        "peak_memory_bytes": (int(torch.cuda.max_memory_allocated()) if cuda
                              else common.peak_rss_bytes()),
        "memory_before_train_bytes": (int(torch.cuda.memory_allocated()) if cuda else rss_before),
        "check_loss_sum": loss_sum, "check_loss_tokens": loss_count,
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters()
                                    if p.requires_grad),
        "loss_history": history,
    }


# ----------------------------------------------------------------------------- orchestrator

def worker_command(args, variant: str, data_file: Path, result: Path) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", variant,
           "--data-file", str(data_file), "--result", str(result),
           "--examples", str(args.examples), "--steps", str(args.steps),
           "--cutoff-len", str(args.cutoff_len), "--recipe", str(args.recipe),
           "--fast-precision", args.fast_precision, "--learning-rate", str(args.learning_rate),
           "--check-examples", str(args.check_examples), "--device", args.device,
           "--dtype", args.dtype, "--model", args.model]
    if args.pack_len:
        cmd += ["--pack-len", str(args.pack_len)]
    if args.model_shape:
        cmd += ["--model-shape", args.model_shape, "--tokenizer", common.tokenizer_path(args)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return cmd


def run_variant(args, variant: str, data_file: Path, work: Path, rnd: int) -> dict:
    result = work / f"{variant}-{rnd}.json"
    proc = subprocess.run(worker_command(args, variant, data_file, result),
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"variant {variant} failed:\n{proc.stderr[-4000:]}")
    row = {**json.loads(result.read_text()), "round": rnd}
    print(f"round {rnd} {variant}: {row['tokens_per_second']:.0f} tokens/s, "
          f"{row['wall_seconds']:.1f} s, peak {row['peak_memory_bytes'] / 2**30:.2f} GiB",
          file=sys.stderr, flush=True)
    return row


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        common.write_json(args.result, run_worker(args))
        shutil.rmtree(args.result.parent / f"worker-{args.worker}", ignore_errors=True)
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    work = Path(tempfile.mkdtemp(prefix="a3duck-bench-train-"))
    rows, sources = common.sample_rows(args.data, args.examples)
    # a3duck strips instruction and input; the original does not: give both the same text
    rows = [{**r, "instruction": r["instruction"].strip(), "input": r["input"].strip()}
            for r in rows]
    data_file = work / "train.jsonl"
    data_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    runs = []
    for rnd in range(args.rounds):
        for variant in variants:
            runs.append(run_variant(args, variant, data_file, work, rnd))
            table = write_results(args, variants, runs, sources)  # kept if a later one times out
    common.print_table(table, COLUMNS)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
