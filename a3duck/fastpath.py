"""The training fast path, chosen per machine: precision, attention kernel, compilation, loss.

Every choice here is exact or (bf16) stated with its tolerance, and logged with its reason:

- precision ``auto``: bf16 weights + bf16 autocast (the IA3 vectors stay fp32: PEFT upcasts
  adapter weights) on CUDA GPUs with bf16 and on CPUs whose units compute bf16 (``avx512_bf16`` or
  AMX on x86, ``bf16`` on Arm), fp32 elsewhere;
- attention ``auto`` for packed (padding-free) rows: flash-attention's varlen kernel where it is
  installed on a GPU that runs it, else flex attention with a document mask on CUDA, else SDPA
  with transformers' dense block-diagonal mask; on a CPU ``sdpa_varlen`` (below), which runs
  causal SDPA per packed example instead of one masked pass over the whole row;
- loss ``auto``: on CPUs the LM head projects only the positions that have a label
  (``logits_to_keep``): prompt positions cost no vocabulary projection (TRL's fused head scores
  every position off Triton devices); on CUDA/XPU TRL's fused, chunked head;
- compile ``auto``: on for CUDA, off on CPUs (compiling a model's forward and backward takes
  minutes on a few cores, as long as the whole demo run; not shown to pay back there).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from a3duck.config import SDPA_VARLEN

log = logging.getLogger(__name__)

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX-512 BF16, x86 AMX, Arm BF16


@dataclass(frozen=True)
class Plan:
    """What a run uses and why (logged once, saved in the run's training metrics)."""

    dtype: torch.dtype
    attn_implementation: str
    compile: bool
    loss: str  # "label_positions" | "trl_fused"
    reasons: dict[str, str]

    def to_dict(self) -> dict:
        return {"precision": str(self.dtype).removeprefix("torch."),
                "attn_implementation": self.attn_implementation, "compile": self.compile,
                "loss": self.loss, "reasons": dict(self.reasons)}


def on_cuda(device: str | None) -> bool:
    return torch.cuda.is_available() and (device in (None, "auto") or "cuda" in str(device))


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The bf16 compute flags this CPU reports in /proc/cpuinfo (empty: none, or not Linux)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags |= set(value.split())
    return [f for f in CPU_BF16_FLAGS if f in flags]


def resolve_precision(precision: str, device: str | None, cpuinfo: str | None = None,
                      cpu_bf16: bool = True) -> tuple[torch.dtype, str]:
    """(dtype, reason) for ``precision`` auto/bf16/fp32 on this machine: THE dtype rule.

    ``cpu_bf16=False`` keeps auto at fp32 on a bf16-capable CPU: the rule for loading weights
    to score or generate (eval, the Space), whose numbers stay fp32 on CPUs; training uses bf16
    autocast there with fp32 IA3 vectors."""
    if precision == "bf16":
        return torch.bfloat16, "bf16 requested"
    if precision == "fp32":
        return torch.float32, "fp32 requested"
    if on_cuda(device):
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, f"auto: {torch.cuda.get_device_name(0)} supports bf16"
        return torch.float32, "auto: this GPU has no bf16 (fp16 gave NaN losses), fp32"
    flags = cpu_bf16_flags(cpuinfo) if cpu_bf16 else []
    if flags:
        return torch.bfloat16, (f"auto: the CPU computes bf16 natively ({', '.join(flags)} in "
                                "/proc/cpuinfo): bf16 autocast, fp32 IA3 vectors")
    capability = torch.backends.cpu.get_cpu_capability()
    return torch.float32, (f"auto: no bf16 unit on this CPU (capability {capability}, no "
                           f"{'/'.join(CPU_BF16_FLAGS)} flag): fp32")


def installed_attention(device: str | None) -> list[str]:
    """Attention implementations that can run packed rows on this machine, best first."""
    if not on_cuda(device):
        return attention_options(None, _importable)
    return attention_options(torch.cuda.get_device_capability(0), _importable)


def attention_options(capability: tuple[int, int] | None, importable) -> list[str]:
    """Best first, for a CUDA GPU of ``capability`` (None: CPU); ``importable(module) -> bool``.

    flash-attention 3 needs Hopper (sm90+), flash-attention 2 Ampere (sm80+); both take the packed
    row's ``cu_seq_lens`` (varlen). Flex attention (Triton) gets a block-sparse document mask from
    the position ids. SDPA gets a dense block-diagonal mask; ``sdpa_varlen`` loops per example."""
    if capability is None:
        return [SDPA_VARLEN, "sdpa", "eager"]
    found = []
    if capability[0] >= 9 and importable("flash_attn_interface"):
        found.append("flash_attention_3")
    if capability[0] >= 8 and importable("flash_attn"):
        found.append("flash_attention_2")
    if importable("triton"):
        found.append("flex_attention")
    return [*found, "sdpa", SDPA_VARLEN, "eager"]


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def resolve_attention(requested: str, device: str | None, packing: bool) -> tuple[str, str]:
    """(implementation, reason)."""
    if requested != "auto":
        return requested, f"{requested} requested"
    options = installed_attention(device)
    if not packing:
        return "sdpa", "auto: rows are not packed, so plain causal SDPA needs no mask"
    best = options[0]
    if not on_cuda(device):
        return best, ("auto: CPU: causal SDPA per packed example (no dense block-diagonal mask "
                      "over the whole row)")
    return best, f"auto: best installed for packed rows on this GPU (of {', '.join(options)})"


def resolve_compile(requested: str, device: str | None) -> tuple[bool, str]:
    if requested in ("always", "never"):
        return requested == "always", f"compile {requested} requested"
    if on_cuda(device):
        return True, "auto: CUDA (compilation pays back over a GPU run)"
    return False, ("auto: off on a CPU (compilation takes minutes on a few cores, as long as a "
                   "demo run)")


def resolve_loss(requested: str, device: str | None) -> tuple[str, str]:
    if requested != "auto":
        return requested, f"{requested} requested"
    from trl.kernels.chunked_logprob import _use_triton

    kind = "cuda" if on_cuda(device) else "cpu"
    if _use_triton(torch.device(kind)):
        return "trl_fused", "auto: TRL's fused LM head projects only labelled positions here"
    return "label_positions", ("auto: LM head only at labelled positions (TRL's fused head "
                               "scores every position off Triton devices)")


def plan(config) -> Plan:
    """The fast-path choices for a TrainConfig on this machine, with reasons."""
    dtype, why_dtype = resolve_precision(config.precision, config.device)
    attn, why_attn = resolve_attention(config.attn_implementation, config.device, config.packing)
    compiled, why_compile = resolve_compile(config.compile, config.device)
    loss, why_loss = resolve_loss(config.loss, config.device)
    return Plan(dtype, attn, compiled, loss, {"precision": why_dtype, "attention": why_attn,
                                              "compile": why_compile, "loss": why_loss})


def log_plan(p: Plan) -> None:
    for key, why in p.reasons.items():
        log.info("%s: %s", key, why)


# ----------------------------------------------------------------------------- attention

def sdpa_varlen_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                          is_causal=None, cu_seq_lens_q=None, **kwargs):
    """Causal SDPA per packed example of a padding-free row (``cu_seq_lens_q`` from the collator);
    transformers' SDPA with its mask for anything else (padded batches, generation)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if cu_seq_lens_q is None or query.shape[0] != 1 or key.shape[2] != query.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    bounds = cu_seq_lens_q.tolist()
    gqa = query.shape[1] != key.shape[1]
    parts = [torch.nn.functional.scaled_dot_product_attention(
        query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], dropout_p=dropout, scale=scaling,
        is_causal=True, enable_gqa=gqa) for s, e in itertools.pairwise(bounds) if e > s]
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


def register_attention() -> None:
    """Make ``sdpa_varlen`` a transformers attention implementation (documented interface:
    AttentionInterface.register); its mask is SDPA's, used only off packed rows."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(SDPA_VARLEN, sdpa_varlen_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(SDPA_VARLEN, sdpa_mask)


def set_attention(model, implementation: str) -> None:
    """Switch a loaded model (PEFT-wrapped or not) to ``implementation``."""
    if implementation == SDPA_VARLEN:
        register_attention()
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(implementation)


# ----------------------------------------------------------------------------- loss

def label_positions_loss(model, inputs: dict, num_items_in_batch=None):
    """(loss, outputs): next-token cross-entropy computed from the logits of labelled positions
    only. Equal to the model's own loss (mean over labelled tokens, or sum / num_items_in_batch
    under gradient accumulation), without projecting prompt positions through the LM head."""
    labels = inputs["labels"]
    shifted = labels[:, 1:]
    keep = shifted.ne(-100).any(0).nonzero().flatten()
    model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    outputs = model(**model_inputs, use_cache=False, logits_to_keep=keep)
    targets = shifted[:, keep].to(outputs.logits.device)
    total = torch.nn.functional.cross_entropy(
        outputs.logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100,
        reduction="sum")
    count = targets.ne(-100).sum() if num_items_in_batch is None else num_items_in_batch
    return total / torch.as_tensor(count, device=total.device).clamp(min=1), outputs


def trainer_class(loss: str):
    """SFTTrainer, or a subclass whose loss is :func:`label_positions_loss`."""
    from trl import SFTTrainer

    if loss == "trl_fused":
        return SFTTrainer

    class LabelPositionsSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss, outputs = label_positions_loss(model, inputs, num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # as Trainer/TRL: DDP averages grads
            return (loss, outputs) if return_outputs else loss

    return LabelPositionsSFTTrainer
