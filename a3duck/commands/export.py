"""`a3duck export`: an IA3 adapter as GGUF (+ Ollama Modelfile), merged safetensors or a LoRA
adapter with its measured fidelity (logic: a3duck.export)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from a3duck.export.exporter import DEFAULT_MAX_KL, FORMATS, RANKS_HELP
    from a3duck.export.gguf import OUTTYPES

    parser.add_argument("--adapter", required=True, help="IA3 adapter folder or Hub id")
    parser.add_argument("--format", required=True, metavar="|".join(FORMATS),
                        help="gguf: merged model for llama.cpp/Ollama/LM Studio; safetensors: "
                        "merged model folder (as `a3duck merge`); lora: PEFT LoRA adapter")
    parser.add_argument("--outtype", default="f16", metavar="|".join(OUTTYPES),
                        help="GGUF tensor type (default f16; f32 is exact, q8_0 is 8-bit)")
    parser.add_argument("--rank", default="auto", help=f"LoRA rank: {RANKS_HELP} (default auto)")
    parser.add_argument("--max-kl", type=float, default=DEFAULT_MAX_KL,
                        help=f"--rank auto: largest mean KL in nats per token against the IA3 "
                        f"model (default {DEFAULT_MAX_KL}; see docs/export.md)")
    parser.add_argument("--data", help="held-out rows (file) to measure LoRA fidelity on "
                        "(default: a3duck's built-in prompts)")
    parser.add_argument("--base-model", help="base model id/folder (default: the adapter's base)")
    parser.add_argument("--output-dir", required=True, help="folder the export is written into")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty --output-dir (atomically)")


def run(args: argparse.Namespace) -> int:
    from a3duck.export.exporter import export

    result = export(args.adapter, args.output_dir, args.format, outtype=args.outtype,
                    rank=args.rank, max_kl=args.max_kl, base=args.base_model, data=args.data,
                    overwrite=args.overwrite)
    if result["format"] == "lora":
        print(f"LoRA rank {result['rank']} (full rank {result['full_rank']}): {result['line']}")
    print(result["output_dir"])
    return 0
