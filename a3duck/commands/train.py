"""`a3duck train`: train an IA3 adapter from a YAML recipe plus command-line overrides."""

from __future__ import annotations

import argparse

from a3duck.config import TrainConfig, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", help="YAML recipe of TrainConfig fields (defaults: the "
                        "published A3Duck recipe), e.g. recipes/smollm2-demo.yaml")
    parser.add_argument("--base-model", help="Hub id or local folder of the base model")
    parser.add_argument("--data", help="training data: .json/.jsonl/.parquet/.csv file or Hub id")
    parser.add_argument("--output-dir", help="run folder; the adapter goes to OUTPUT_DIR/adapter/")
    parser.add_argument("--max-steps", type=int, help="stop after N optimizer steps (-1: epochs)")
    parser.add_argument("--num-epochs", type=float, help="passes over the data")
    parser.add_argument("--learning-rate", type=float, help="peak learning rate (IA3 often wants "
                        "~10x the LoRA-tuned 4e-4)")
    parser.add_argument("--batch-size", type=int, help="examples (or packed rows) per optimizer step")
    parser.add_argument("--micro-batch-size", type=int, help="examples per forward pass")
    parser.add_argument("--cutoff-len", type=int, help="maximum tokens per example")
    parser.add_argument("--save-steps", type=int, help="checkpoint every N optimizer steps")
    parser.add_argument("--packing", action=argparse.BooleanOptionalAction, default=None,
                        help="padding-free packing of several examples per row (exact per token)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in OUTPUT_DIR/checkpoints")
    parser.add_argument("--skip-bad-rows", action="store_true", default=None,
                        help="drop invalid rows (reported with their numbers) instead of stopping")
    parser.add_argument("--device", help="'cpu' to force the CPU; default picks the accelerator")
    quant = parser.add_mutually_exclusive_group()
    quant.add_argument("--load-in-4bit", dest="quantization", action="store_const", const="4bit",
                       help="load the frozen base in 4-bit NF4 (bitsandbytes, CUDA only)")
    quant.add_argument("--load-in-8bit", dest="quantization", action="store_const", const="8bit",
                       help="load the frozen base in 8-bit (bitsandbytes, CUDA only)")


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Recipe (or defaults) with command-line overrides applied."""
    config = load_config(args.recipe) if args.recipe else TrainConfig()
    return config.replace(
        base_model=args.base_model, data=args.data, output_dir=args.output_dir,
        max_steps=args.max_steps, num_epochs=args.num_epochs, learning_rate=args.learning_rate,
        batch_size=args.batch_size, micro_batch_size=args.micro_batch_size,
        cutoff_len=args.cutoff_len, save_steps=args.save_steps, packing=args.packing,
        skip_bad_rows=args.skip_bad_rows, device=args.device, quantization=args.quantization,
    )


def run(args: argparse.Namespace) -> int:
    from a3duck.train import train

    adapter_dir = train(resolve_config(args), resume=args.resume)
    print(adapter_dir)
    return 0
