"""TrainConfig: the one typed configuration of a training run.

Defaults are the published A3Duck recipe (Llama-2-13B on Open-Platypus, Platypus hyperparameters,
PEFT's IA3 defaults for Llama). A run's config is resolved in this order: dataclass defaults, then
the YAML recipe, then command-line overrides; the resolved config is written next to every
artifact as ``a3duck_config.yaml``.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from a3duck.errors import ConfigError

CONFIG_FILENAME = "a3duck_config.yaml"
# Attention implementations a run may ask for (a3duck.fastpath picks one for "auto").
SDPA_VARLEN = "sdpa_varlen"  # causal SDPA per packed example (a3duck.fastpath)
ATTENTION_CHOICES = ("auto", "sdpa", "eager", SDPA_VARLEN, "flex_attention",
                     "flash_attention_2", "flash_attention_3")




@dataclass
class TrainConfig:
    """Every knob of a run. Field comments give the reason for each default."""

    # --- what to train on -------------------------------------------------------------------
    base_model: str = "meta-llama/Llama-2-13b-hf"  # the base of the original A3Duck release
    data: str = "garage-bAInd/Open-Platypus"  # the Platypus training set (Hub id or local file)
    data_split: str = "train"  # Open-Platypus ships a single train split
    output_dir: str = "out"  # the adapter lands in OUTPUT_DIR/adapter/
    prompt_template: str = "alpaca"  # Platypus trained with alpaca-lora's Alpaca template

    # --- optimisation (the published A3Duck table) -------------------------------------------
    learning_rate: float = 4e-4  # published value; tuned for LoRA, IA3 often wants ~10x more
    lr_scheduler: str = "cosine"  # published value
    warmup_steps: int = 100  # published value
    weight_decay: float = 0.0  # published value: IA3 vectors start at 1.0, decay would pull to 0
    num_epochs: float = 1.0  # published value: one pass over Open-Platypus
    max_steps: int = -1  # -1 = run num_epochs; set for smoke runs and demos
    batch_size: int = 16  # published global batch (examples per optimizer step)
    micro_batch_size: int = 1  # published per-device batch; accumulation = batch / micro
    seed: int = 42  # fixed so runs are reproducible
    max_grad_norm: float = 1.0  # Trainer default; guards the first steps of warmup

    # --- sequence handling ------------------------------------------------------------------
    cutoff_len: int = 4096  # published value: Llama-2's context window
    train_on_inputs: bool = False  # published: loss only on the answer, prompts are masked
    add_eos_token: bool = False  # published value (Platypus did not append EOS)
    group_by_length: bool = False  # published value (it distorts the loss curve)
    too_long: Literal["truncate", "drop"] = "truncate"  # rows over cutoff: cut (as Platypus did)
    skip_bad_rows: bool = False  # invalid rows stop the run by default; True drops and reports
    packing: bool = False  # the original did not pack; True = padding-free packing (faster)

    # --- IA3 (PEFT's Llama defaults) ---------------------------------------------------------
    target_modules: list[str] | None = None  # None = PEFT's per-architecture defaults (k,v,down)
    feedforward_modules: list[str] | None = None  # None = PEFT default (down_proj on Llama)

    # --- hardware / bookkeeping --------------------------------------------------------------
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 on GPUs/bf16 CPUs (fp16: NaNs)
    attn_implementation: str = "auto"  # auto: fastest exact kernel for packed rows on this machine
    compile: Literal["auto", "always", "never"] = "auto"  # auto: on CUDA; off on CPU (minutes to compile)
    loss: Literal["auto", "label_positions", "trl_fused"] = "auto"  # LM head only where labels are
    gradient_checkpointing: bool = False  # trades ~30% speed for memory; off unless needed
    quantization: Literal["none", "4bit", "8bit"] = "none"  # bitsandbytes base (GPU only)
    logging_steps: int = 1  # one log line per optimizer step
    save_steps: int = 200  # checkpoint interval in optimizer steps (Platypus used 200)
    save_total_limit: int = 2  # keep the last two checkpoints
    device: str = "auto"  # "auto" = Trainer picks; "cpu" forces CPU

    def __post_init__(self) -> None:
        self.validate()

    @property
    def gradient_accumulation_steps(self) -> int:
        """Micro-batches per optimizer step on each process, so that the global batch stays
        ``batch_size`` whatever the number of processes (``WORLD_SIZE`` set by the launcher)."""
        world = max(1, int(os.environ.get("WORLD_SIZE", "1")))
        per_step = self.micro_batch_size * world
        if self.batch_size % per_step:
            raise ConfigError(
                f"batch_size ({self.batch_size}) must be a multiple of micro_batch_size x "
                f"processes ({self.micro_batch_size} x {world})"
            )
        return self.batch_size // per_step

    def validate(self) -> None:
        """Raise ConfigError naming the first field whose value cannot work."""
        if self.batch_size < 1 or self.micro_batch_size < 1:
            raise ConfigError("batch_size and micro_batch_size must be >= 1")
        if self.batch_size % self.micro_batch_size:
            raise ConfigError(
                f"batch_size ({self.batch_size}) must be a multiple of micro_batch_size "
                f"({self.micro_batch_size})"
            )
        if self.cutoff_len < 8:
            raise ConfigError(f"cutoff_len must be >= 8 tokens, got {self.cutoff_len}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.too_long not in ("truncate", "drop"):
            raise ConfigError(f"too_long must be 'truncate' or 'drop', got {self.too_long!r}")
        if self.quantization not in ("none", "4bit", "8bit"):
            raise ConfigError(f"quantization must be none, 4bit or 8bit, got {self.quantization!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if isinstance(self.compile, bool):  # YAML `compile: true/false`
            self.compile = "always" if self.compile else "never"
        for name, allowed in (("compile", ("auto", "always", "never")),
                              ("loss", ("auto", "label_positions", "trl_fused")),
                              ("attn_implementation", ATTENTION_CHOICES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, "
                                  f"got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with the given non-None overrides applied (and validated)."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **clean)


def field_names() -> list[str]:
    return [f.name for f in fields(TrainConfig)]


def from_dict(raw: dict[str, Any], source: str = "recipe") -> TrainConfig:
    """Build a TrainConfig from a mapping; unknown keys are an error naming the key."""
    unknown = sorted(set(raw) - set(field_names()))
    if unknown:
        raise ConfigError(
            f"{source}: unknown field(s) {', '.join(unknown)}; known fields: "
            f"{', '.join(field_names())}"
        )
    try:
        return TrainConfig(**raw)
    except TypeError as exc:  # wrong value type surfaced by dataclass init
        raise ConfigError(f"{source}: {exc}") from exc


def load_config(path: str | os.PathLike[str]) -> TrainConfig:
    """Read a YAML recipe (a mapping of TrainConfig fields)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"recipe file not found: {p}")
    raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: a recipe must be a YAML mapping of config fields")
    return from_dict(raw, source=str(p))


def save_config(config: TrainConfig | dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML, atomically (temp file + rename)."""
    data = config.to_dict() if isinstance(config, TrainConfig) else dict(config)
    atomic_write_text(Path(path), yaml.safe_dump(data, sort_keys=False))


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to ``path`` via a temp file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; artifacts are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def describe_fields() -> list[dict[str, str]]:
    """Each TrainConfig field with its type, default and the one-line reason from the source.

    The reasons are the comments next to the fields, so documentation cannot drift from them."""
    import inspect
    import re

    reasons = {}
    for line in inspect.getsource(TrainConfig).splitlines():
        m = re.match(r"\s+(\w+): .+?#\s*(.+)$", line)
        if m:
            reasons[m.group(1)] = m.group(2).strip()
    defaults = TrainConfig()
    return [{"name": f.name, "type": str(f.type), "default": repr(getattr(defaults, f.name)),
             "reason": reasons.get(f.name, "")} for f in fields(TrainConfig)]


def reference_markdown() -> str:
    """docs/configuration.md: every field of TrainConfig (generated; see tests)."""
    lines = ["# Configuration reference", "",
             "Generated from `a3duck/config.py` by `python -m a3duck.config > "
             "docs/configuration.md`; a test fails when it drifts. Defaults are the published "
             "A3Duck recipe. Set fields in a YAML recipe (`recipes/*.yaml`); the common ones "
             "also have `a3duck train` flags (`a3duck train --help`).", "",
             "| field | type | default | why |", "|---|---|---|---|"]
    for f in describe_fields():
        lines.append(f"| `{f['name']}` | `{f['type']}` | `{f['default']}` | {f['reason']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
