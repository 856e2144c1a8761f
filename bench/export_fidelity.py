"""Fidelity table of `a3duck export` (docs/export.md): LoRA rank vs mean KL / top-1 agreement vs
file size against the IA3 adapter, and each GGUF outtype's logit error against the merged model,
on held-out rows. Usage: python bench/export_fidelity.py ADAPTER DATA [RANK ...]"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch


def lora_rows(adapter: str, data: str, ranks: list[int]) -> None:
    from a3duck import adapter_folder, models
    from a3duck.export import fidelity, lora

    ia3, tok = models.load(None, adapter, dtype=torch.float32, device="cpu")
    batches = fidelity.held_out_ids(adapter, tok, data)
    ref = fidelity.logits_of(ia3, batches)
    plain = ia3.unload()
    factors = lora.factorise(adapter_folder.tensors(adapter_folder.resolve(adapter)), plain)
    full = lora.full_rank(factors)
    print("| rank | mean KL (nats) | top-1 agreement | max abs logit diff | file MB |")
    for r in [*ranks, full]:
        with lora.applied(plain, factors, r) as patched:
            f = fidelity.compare(ref, fidelity.logits_of(patched, batches))
        size = sum(r * (x.u.shape[0] + x.vh.shape[1]) for x in factors) * 4 / 1e6
        print(f"| {r}{' (full)' if r == full else ''} | {f.mean_kl:.2e} | "
              f"{f.top1_agreement:.2%} | {f.max_abs_logit:.3g} | {size:.1f} |", flush=True)


def gguf_rows(adapter: str, data: str) -> None:
    from transformers import AutoModelForCausalLM

    from a3duck import models
    from a3duck.export import fidelity, gguf

    merged, tok = models.load_merged(adapter)
    batches = fidelity.held_out_ids(adapter, tok, data)
    ref = fidelity.logits_of(merged, batches)
    print("| outtype | mean KL (nats) | top-1 agreement | max abs logit diff | file MB |")
    with tempfile.TemporaryDirectory() as work:
        tok.save_pretrained(work)
        for outtype in gguf.OUTTYPES:
            path = Path(work) / f"m-{outtype}.gguf"
            gguf.write_gguf(merged, tok, Path(work), path, outtype, "m")
            back = AutoModelForCausalLM.from_pretrained(work, gguf_file=path.name,
                                                        dtype=torch.float32)
            f = fidelity.compare(ref, fidelity.logits_of(back, batches))
            print(f"| {outtype} | {f.mean_kl:.2e} | {f.top1_agreement:.2%} | "
                  f"{f.max_abs_logit:.3g} | {path.stat().st_size / 1e6:.1f} |", flush=True)
            path.unlink()


if __name__ == "__main__":
    adapter, data, *ranks = sys.argv[1:]
    gguf_rows(adapter, data)
    lora_rows(adapter, data, [int(r) for r in ranks] or [8, 32, 128, 256])
