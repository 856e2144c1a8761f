"""bench/train.py's results: the median per variant, same-round ratios to the baseline, the
table printed and the JSON written after every variant (kept if a later one times out)."""

from __future__ import annotations

import common

# Rows of garage-bAInd/Open-Platypus (its dataset card); an epoch's time is estimated from the
# bench data's mean example length, so it is only as close as that length mix is to Platypus'.
OPEN_PLATYPUS_ROWS = 24_926


def summarise(runs: list[dict], variants) -> list[dict]:
    """Median per variant, with ratios to ``reference`` (or to the first variant)."""
    rows = []
    for v in variants:
        mine = [r for r in runs if r["variant"] == v]
        rows.append({
            "variant": v, **{k: mine[0][k] for k in (
                "examples", "input_tokens", "loss_tokens", "optimizer_steps",
                "trainable_parameters", "check_loss_sum", "check_loss_tokens",
                "truncated_examples", "fast_path")},
            "check_loss": mine[0]["check_loss_sum"] / max(mine[0]["check_loss_tokens"], 1),
            "tokens_per_second": common.median([r["tokens_per_second"] for r in mine]),
            "loss_tokens_per_second": common.median([r["loss_tokens_per_second"] for r in mine]),
            "wall_seconds": common.median([r["wall_seconds"] for r in mine]),
            "peak_memory_gib": max(r["peak_memory_bytes"] for r in mine) / 2**30,
            "final_loss": mine[0]["loss_history"][-1]["loss"] if mine[0]["loss_history"] else None,
        })
    ref = next((r for r in rows if r["variant"] == "reference"), rows[0])
    by_round = {(r["variant"], r["round"]): r["tokens_per_second"] for r in runs}
    for r in rows:
        # Same-round ratios: both variants saw the same machine load (the median of these is the
        # number to quote on a shared machine).
        r["speedup_per_round"] = [by_round[(r["variant"], k)] / by_round[(ref["variant"], k)]
                                  for v, k in sorted(by_round) if v == r["variant"]
                                  and (ref["variant"], k) in by_round]
        r["baseline"] = ref["variant"]
        r["speedup"] = common.median(r["speedup_per_round"])
        # A pack length below the longest example truncates it: then the variants differ in data.
        r["same_data"] = (r["input_tokens"] == ref["input_tokens"]
                          and r["loss_tokens"] == ref["loss_tokens"])
        r["open_platypus_epoch_hours"] = (OPEN_PLATYPUS_ROWS * r["input_tokens"] / r["examples"]
                                          / r["tokens_per_second"] / 3600)
        r["memory_ratio"] = r["peak_memory_gib"] / ref["peak_memory_gib"]
        r["check_loss_rel_diff"] = (abs(r["check_loss_sum"] - ref["check_loss_sum"])
                                    / max(abs(ref["check_loss_sum"]), 1e-12))
    return rows


COLUMNS = [("variant", "variant", ""), ("tokens_per_second", "tokens/s", ".0f"),
           ("loss_tokens_per_second", "loss tokens/s", ".0f"),
           ("speedup", "× baseline", ".2f"), ("peak_memory_gib", "peak GiB", ".2f"),
           ("memory_ratio", "mem × baseline", ".2f"), ("optimizer_steps", "steps", "d"),
           ("check_loss", "first-step loss", ".4f"),
           ("open_platypus_epoch_hours", "Platypus epoch h", ".1f"),
           ("check_loss_rel_diff", "loss rel. diff", ".1e"), ("same_data", "same data", "")]


def write_results(args, variants, runs: list[dict], sources: dict) -> list[dict]:
    done = [v for v in variants if any(r["variant"] == v for r in runs)]
    table = summarise(runs, done)
    common.write_json(args.output, {
        "benchmark": "train", "model": common.model_label(args), "sources": sources,
        "settings": {**{k: getattr(args, k) for k in (
            "examples", "steps", "rounds", "cutoff_len", "pack_len", "device", "dtype", "threads",
            "learning_rate", "fast_precision")}, "recipe": common.public_path(args.recipe)},
        "machine": common.machine(args), "summary": table, "runs": runs,
    })
    return table
