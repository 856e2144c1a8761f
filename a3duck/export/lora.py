"""An IA3 adapter written as an ordinary PEFT LoRA adapter (for LoRA-only servers).

IA3 scales a layer: outputs (``k_proj``, ``v_proj``, ...: vector shape ``(out, 1)``) or inputs
(feed-forward modules such as ``down_proj``: shape ``(1, in)``), so the merged weight is
``W * l`` (broadcast) and the change is ``ΔW = W * (l - 1)``: ``diag(l - 1) W`` for outputs,
``W diag(l - 1)`` for inputs. Its rank is at most the number of scales that differ from 1.
LoRA adds ``B A * lora_alpha / r``; the best rank-``r`` pair in the least-squares sense is the
truncated SVD of ``ΔW`` (Eckart-Young), split evenly: ``B = U_r sqrt(S_r)``,
``A = sqrt(S_r) Vh_r``. ``lora_alpha = r`` makes the scaling 1. At the full rank (the largest
numerical rank of any layer's ``ΔW``) the LoRA is exact up to float rounding; layers of a lower
rank are padded with zeros, since servers (vLLM, SGLang, llama.cpp's converter) read one ``r``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch

from a3duck.adapter_folder import ADAPTER_WEIGHTS, RECORDED_BASE
from a3duck.adapter_folder import PEFT_PREFIX as PREFIX
from a3duck.errors import ExportError


@dataclass
class Factors:
    """One layer's ΔW as its SVD (float64), truncated at its numerical rank."""

    module: str  # the base model's module name, e.g. model.layers.0.self_attn.k_proj
    u: torch.Tensor  # (out, k)
    s: torch.Tensor  # (k,)
    vh: torch.Tensor  # (k, in)

    @property
    def rank(self) -> int:
        return int(self.s.numel())

    def pair(self, r: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) of rank ``r`` (zero-padded past this layer's rank), float32."""
        k = min(r, self.rank)
        root = self.s[:k].sqrt()
        a = torch.zeros(r, self.vh.shape[1], dtype=torch.float64)
        b = torch.zeros(self.u.shape[0], r, dtype=torch.float64)
        a[:k], b[:, :k] = root[:, None] * self.vh[:k], self.u[:, :k] * root
        return a.float().contiguous(), b.float().contiguous()

    def delta(self, r: int) -> torch.Tensor:
        k = min(r, self.rank)
        return ((self.u[:, :k] * self.s[:k]) @ self.vh[:k]).float()


def factorise(vectors: dict[str, torch.Tensor], base) -> list[Factors]:
    """The SVD of every adapted layer's ΔW. ``vectors``: the IA3 file's tensors (PEFT names)."""
    modules = dict(base.named_modules())
    out = []
    for key, vec in vectors.items():
        name = key.removeprefix(PREFIX).removesuffix(".ia3_l")
        module = modules.get(name)
        if module is None or not hasattr(module, "weight"):
            raise ExportError(f"adapter tensor {key} has no layer {name!r} in the base")
        weight = module.weight.detach().double()
        delta = weight * (vec.double() - 1.0)  # rows for (out, 1), columns for (1, in)
        u, s, vh = torch.linalg.svd(delta, full_matrices=False)
        # numerical rank: singular values above float64 noise of this matrix
        keep = int((s > s.max().clamp_min(1e-300) * max(delta.shape) * 2.2e-16).sum()) \
            if s.numel() else 0
        out.append(Factors(name, u[:, :keep], s[:keep], vh[:keep]))
    return out


def full_rank(factors: list[Factors]) -> int:
    return max([f.rank for f in factors] + [1])


def candidate_ranks(full: int) -> list[int]:
    """1, 2, 4, ... below ``full``, then ``full``: what ``--rank auto`` tries, smallest first."""
    ranks, r = [], 1
    while r < full:
        ranks.append(r)
        r *= 2
    return ranks + [full]


@contextlib.contextmanager
def applied(base, factors: list[Factors], r: int | None):
    """``base`` with ``W + ΔW_r`` in every adapted layer (``r=None``: the exact ΔW, i.e. the
    IA3 merge); the original weights are put back afterwards."""
    modules = dict(base.named_modules())
    saved = {}
    try:
        with torch.no_grad():
            for f in factors:
                weight = modules[f.module].weight
                saved[f.module] = weight.detach().clone()
                weight.add_(f.delta(f.rank if r is None else r).to(weight.dtype))
        yield base
    finally:
        with torch.no_grad():
            for name, original in saved.items():
                modules[name].weight.copy_(original)


def lora_tensors(factors: list[Factors], r: int) -> dict[str, torch.Tensor]:
    """The adapter file's tensors, named as PEFT saves a LoRA adapter."""
    out = {}
    for f in factors:
        a, b = f.pair(r)
        out[f"{PREFIX}{f.module}.lora_A.weight"] = a
        out[f"{PREFIX}{f.module}.lora_B.weight"] = b
    return out


def write_lora(folder: Path, factors: list[Factors], r: int, base_name: str) -> None:
    """PEFT's LoraConfig (ADAPTER_CONFIG) + the LoRA weights (ADAPTER_WEIGHTS) in ``folder``."""
    from peft import LoraConfig
    from safetensors.torch import save_file

    targets = sorted({f.module.rsplit(".", 1)[-1] for f in factors})
    config = LoraConfig(task_type="CAUSAL_LM", r=r, lora_alpha=r, lora_dropout=0.0,
                        target_modules=targets, bias="none", **{RECORDED_BASE: base_name})
    config.save_pretrained(str(folder))
    save_file(lora_tensors(factors, r), str(Path(folder) / ADAPTER_WEIGHTS),
              metadata={"format": "pt"})
