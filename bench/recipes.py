"""Published-shape vs tuned IA3 recipes on the embedded model: same data, same steps.

For each variant: train (recipe + overrides), then the held-out loss (mean cross-entropy over
the assistant tokens of the held-out conversations, the tokens training sees) and
`a3duck compare`'s scores. Variants (docs/recipes.md):
- published: PEFT's default IA3 modules (k, v, down) at the published lr 4e-4;
- demo: the same modules at lr 1e-2 (recipes/smollm2-demo.yaml);
- tuned: every linear layer of the block at lr 1e-2 (recipes/smollm2-tuned-demo.yaml).

Usage: python bench/recipes.py --steps 12 --batch-size 8 --limit 40 --output bench/recipes.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import common  # noqa: F401 - puts the repository first on sys.path, Hub offline

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "published": ("recipes/smollm2-demo.yaml", {"learning_rate": 4e-4}),
    "demo": ("recipes/smollm2-demo.yaml", {}),
    "tuned": ("recipes/smollm2-tuned-demo.yaml", {}),
}


def held_out_loss(adapter: Path, data: str) -> tuple[float, int]:
    """(mean loss per labelled token, labelled tokens) of the adapter on ``data``."""
    import torch

    from a3duck import adapter_folder, dataset, models
    from a3duck.config import TrainConfig

    model, tok = models.load(adapter=str(adapter), dtype=torch.float32)
    config = TrainConfig(data=data, prompt_template=adapter_folder.template(adapter),
                         cutoff_len=4096)
    rows, _, _ = dataset.prepare_dataset(config, tok)
    total, count = 0.0, 0
    with torch.no_grad():
        for ids, mask in zip(rows["input_ids"], rows["completion_mask"]):
            ids_t = torch.tensor([ids])
            labels = torch.tensor([[t if m else -100 for t, m in zip(ids, mask)]])
            logits = model(input_ids=ids_t).logits[0, :-1]
            loss = torch.nn.functional.cross_entropy(logits, labels[0, 1:], reduction="sum",
                                                     ignore_index=-100)
            total, count = total + float(loss), count + int((labels[0, 1:] != -100).sum())
    return total / count, count


def run_variant(name: str, args, work: Path) -> dict:
    from a3duck import adapter_folder
    from a3duck.compare import compare
    from a3duck.config import load_config
    from a3duck.train import train

    recipe, overrides = VARIANTS[name]
    config = load_config(ROOT / recipe).replace(
        output_dir=str(work / name), max_steps=args.steps, save_steps=10_000,
        batch_size=args.batch_size, micro_batch_size=args.batch_size, **overrides)
    started = time.perf_counter()
    adapter = train(config)
    metrics = adapter_folder.train_metrics(adapter)
    loss, tokens = held_out_loss(adapter, args.eval_data)
    scores = compare(str(adapter), args.eval_data, limit=args.limit,
                     max_new_tokens=args.max_new_tokens)
    return {"variant": name, "recipe": recipe, "overrides": overrides,
            "learning_rate": config.learning_rate, "target_modules": config.target_modules,
            "steps": metrics["steps"],
            "train_loss_first": metrics["loss_history"][0]["loss"],
            "train_loss_last": metrics["final_loss"], "held_out_loss": loss,
            "held_out_tokens": tokens, "compare_n": scores["n"], "scores": scores["scores"],
            "seconds": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8, help="packed rows per step")
    parser.add_argument("--limit", type=int, default=40, help="held-out rows for compare")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--eval-data", default=str(ROOT / "data" / "demo" / "eval.jsonl"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--work", default="/tmp/a3duck-bench-recipes")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "recipes.json")
    args = parser.parse_args()
    results = []
    for name in args.variants.split(","):
        results.append(run_variant(name, args, Path(args.work)))
        args.output.write_text(json.dumps({"settings": vars(args) | {"output": str(args.output)},
                                           "results": results}, indent=2))
        print(json.dumps(results[-1]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
