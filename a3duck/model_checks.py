"""Settings that depend on the base model, checked from its config before any weight loads.

:func:`check_model_settings` reads ``config.json`` with ``AutoConfig`` (no weights; the model
type must be one transformers knows, no remote code), builds the architecture on the ``meta``
device (no memory, no weights) to learn its module names, and checks a run's settings against
them: every target and feed-forward module matches a linear layer (a typo is named with the
nearest valid name), the feed-forward modules are targets too (PEFT's rule), and the cutoff
fits the context window. Every problem is one :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import difflib
import logging
from typing import Any

from a3duck.errors import ConfigError, ModelError

log = logging.getLogger(__name__)


def read_model_config(path: str):
    """The base's ``PretrainedConfig`` (config.json only); ModelError naming an unknown type."""
    from transformers import AutoConfig, __version__

    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=False)
    except (ValueError, KeyError) as exc:
        raise ModelError(
            f"base model {path}: its config.json is not an architecture transformers "
            f"{__version__} knows ({str(exc).splitlines()[0][:200]}); pass a Llama-family base "
            "model, or upgrade transformers if the model type is newer") from None


def linear_layers(model_config) -> list[str]:
    """The full names of the architecture's linear layers (built on the meta device)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(model_config, trust_remote_code=False)
    return [name for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name]


def _matches(target: str, names: list[str]) -> bool:
    """PEFT's rule for a list of target names: the full name, or its last dotted parts."""
    return any(name == target or name.endswith("." + target) for name in names)


def module_problems(field: str, wanted: list[str] | None, names: list[str]) -> list[tuple]:
    """(field, message) for every name in ``wanted`` that matches no linear layer."""
    leaves = sorted({name.rsplit(".", 1)[-1] for name in names})
    problems = []
    for target in wanted or []:
        if _matches(target, names):
            continue
        close = difflib.get_close_matches(target, leaves, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"its linear layers: {', '.join(leaves)}"
        problems.append((field, f"{target!r} matches no module of this model; {hint}"))
    return problems


def settings_problems(config, model_config, names: list[str]) -> list[tuple[str, str]]:
    """Every problem of ``config`` (a TrainConfig) against the model; [] when usable."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as IA3

    problems = module_problems("target_modules", config.target_modules, names)
    problems += module_problems("feedforward_modules", config.feedforward_modules, names)
    targets = config.target_modules or IA3.get(model_config.model_type)
    if config.target_modules is None and targets is None:
        problems.append(("target_modules", (f"PEFT has no IA3 defaults for model type "
                         f"{model_config.model_type!r}: give target_modules")))
    stray = [m for m in config.feedforward_modules or [] if targets and m not in targets]
    if stray:
        problems.append(("feedforward_modules", (f"{', '.join(stray)} must also be in "
                         f"target_modules ({', '.join(targets)}): feed-forward modules are "
                         "a subset of the targets")))
    window = _context_window(model_config)
    if window and config.cutoff_len > window:
        problems.append(("cutoff_len", (f"{config.cutoff_len} tokens is longer than the model's "
                         f"context window ({window}); use --cutoff-len {window} or less")))
    return problems


def _context_window(model_config) -> int | None:
    value: Any = getattr(model_config, "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def check_model_settings(config, base_path: str) -> None:
    """ConfigError naming every setting of ``config`` the base at ``base_path`` cannot use,
    read from its config alone (called before data and weights load)."""
    from a3duck.config_checks import format_problems

    model_config = read_model_config(base_path)
    problems = settings_problems(config, model_config, linear_layers(model_config))
    if problems:
        raise ConfigError(format_problems(f"settings for base {config.base_model}", problems))
