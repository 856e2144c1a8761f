"""ZeroGPU support: model calls run inside ``@spaces.GPU(duration=...)`` on ZeroGPU hardware.

ZeroGPU (Hugging Face's shared H200 slices) attaches a GPU only while a function decorated with
``spaces.GPU`` runs; the model is placed on CUDA at import time (the ``spaces`` package emulates
CUDA until then) and ``torch.compile`` is not supported, so nothing here compiles. The ``spaces``
decorator is a no-op off ZeroGPU (``spaces.config.Config.zero_gpu``, set from the
``SPACES_ZERO_GPU`` variable the platform defines), and without the package :func:`gpu` returns
the function itself: the same handlers run unchanged everywhere.

The duration asked for is computed from the request (prompt tokens and new tokens), so short
requests get short GPU slots, which ZeroGPU's queue serves first.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

# Seconds: fixed cost of a call (GPU attach, first kernels), per generated token (13B bf16 on
# an H200 slice, with margin), per prompt token (prefill). Clamped to what ZeroGPU grants.
GPU_OVERHEAD_S = 10.0
GPU_S_PER_NEW_TOKEN = 0.06
GPU_S_PER_PROMPT_TOKEN = 0.002
GPU_MIN_S, GPU_MAX_S = 15, 120


def on_zerogpu() -> bool:
    """True when this process runs on ZeroGPU hardware (as ``spaces`` itself decides)."""
    if importlib.util.find_spec("spaces") is None:
        return False
    from spaces.config import Config

    return bool(Config.zero_gpu)


def gpu_seconds(prompt_tokens: int, new_tokens: int, passes: int = 1) -> int:
    """GPU time to request for ``passes`` runs of a prompt plus ``new_tokens`` generated."""
    per_pass = (GPU_S_PER_PROMPT_TOKEN * max(0, int(prompt_tokens))
                + GPU_S_PER_NEW_TOKEN * max(0, int(new_tokens)))
    return int(min(GPU_MAX_S, max(GPU_MIN_S, GPU_OVERHEAD_S + passes * per_pass)))


def gpu(duration: Callable[..., int]) -> Callable[[Callable], Callable]:
    """``spaces.GPU(duration=duration)``; the identity where ``spaces`` is not installed.

    ``duration`` takes the decorated function's arguments and returns seconds (the dynamic
    duration of the ``spaces`` package)."""
    if importlib.util.find_spec("spaces") is None:
        return lambda fn: fn
    import spaces

    return spaces.GPU(duration=duration)


def prompt_tokens(tokenizer, *texts: str) -> int:
    """Token count of the texts (the prompt part of a duration estimate)."""
    return sum(len(tokenizer(t or "")["input_ids"]) for t in texts)
