"""Held-out preference numbers of a DPO adapter against the adapter it started from.

For each held-out pair (tokenised exactly as training does, a3duck.preference) it computes the
summed log-probability of the chosen and of the rejected answer under the start adapter (the
DPO reference; "before") and under the DPO adapter ("after"), in fp32, and prints:
- preference accuracy: share of pairs whose chosen answer the model finds more likely;
- mean log-prob margin: mean of log p(chosen) - log p(rejected);
- DPO's implicit reward (beta * log(policy / reference)): mean margin and accuracy (share of
  pairs with a positive margin) — 0 before by definition.

    python bench/dpo_heldout.py --start out/adapter --dpo out-dpo/adapter \\
        --pairs data/demo/pairs_eval.jsonl [--limit 100] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from a3duck import adapter_folder as af
from a3duck import models, preference


def answer_logps(model, dataset) -> torch.Tensor:
    """[pairs, 2]: summed log p of the chosen and the rejected answer, given the prompt."""
    out = []
    with torch.no_grad():
        for row in dataset:
            pair = []
            for answer in (row["chosen_ids"], row["rejected_ids"]):
                ids = torch.tensor([row["prompt_ids"] + answer])
                logps = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
                picked = logps.gather(-1, ids[0, 1:, None]).squeeze(-1)
                pair.append(picked[-len(answer):].sum())
            out.append(torch.stack(pair))
    return torch.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", required=True, help="the adapter DPO started from")
    parser.add_argument("--dpo", required=True, help="the DPO adapter")
    parser.add_argument("--pairs", required=True, help="held-out preference pairs")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()
    trained = af.train_config(af.resolve(args.dpo))
    config = trained.replace(data=args.pairs, skip_bad_rows=True, init_adapter=None,
                             init_adapter_sha256=None, reference="base")
    numbers = {}
    logps = {}
    for name, adapter in (("before", args.start), ("after", args.dpo)):
        model, tok = models.load(None, adapter, dtype=torch.float32, device="cpu")
        dataset, _report, _ = preference.prepare(config, tok)
        dataset = dataset.select(range(min(args.limit, len(dataset))))
        logps[name] = answer_logps(model, dataset)
        margin = logps[name][:, 0] - logps[name][:, 1]
        numbers[name] = {"pairs": len(dataset), "accuracy": float((margin > 0).float().mean()),
                         "mean_logp_margin": float(margin.mean())}
    rewards = trained.beta * (logps["after"] - logps["before"])
    reward_margin = rewards[:, 0] - rewards[:, 1]
    numbers["after"].update(reward_margin=float(reward_margin.mean()),
                            reward_accuracy=float((reward_margin > 0).float().mean()))
    numbers["before"].update(reward_margin=0.0, reward_accuracy=0.0)
    print(f"{'':8} {'pairs':>6} {'accuracy':>9} {'logp margin':>12} {'reward margin':>14} "
          f"{'reward acc':>10}")
    for name, n in numbers.items():
        print(f"{name:8} {n['pairs']:>6} {n['accuracy']:>9.3f} {n['mean_logp_margin']:>12.3f} "
              f"{n['reward_margin']:>14.4f} {n['reward_accuracy']:>10.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
