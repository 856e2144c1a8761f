"""TrainConfig: the one typed configuration of a training run.

Defaults are the published A3Duck recipe (Llama-2-13B on Open-Platypus, Platypus hyperparameters,
PEFT's IA3 defaults for Llama). A run's config is resolved in this order: dataclass defaults, then
the YAML recipe, then command-line overrides; the resolved config is written next to every
artifact (its file name: :data:`a3duck.adapter_folder.TRAIN_CONFIG`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from a3duck.config_checks import coerce_all, format_problems, value_problems
from a3duck.errors import ConfigError
from a3duck.files import atomic_write_text

MIX_KEY = "mix"  # the training config of a mixed adapter (a3duck mix): its sources and weights
SDPA_VARLEN = "sdpa_varlen"  # causal SDPA per packed example (a3duck.fastpath)


def knob(default: Any, why: str) -> Any:
    """A TrainConfig field and the one-line reason for its default: the one source of the
    configuration reference (docs/configuration.md) and of `a3duck train --help`."""
    return field(default=default, metadata={"why": why})


@dataclass
class TrainConfig:
    """Every knob of a run, each with the reason for its default. Every field is a recipe key
    and an `a3duck train` flag (``warmup_steps`` -> ``--warmup-steps``)."""

    # --- what to train on -------------------------------------------------------------------
    base_model: str = knob("meta-llama/Llama-2-13b-hf", "the base of the original A3Duck release")
    data: str | list = knob(  # noqa: RUF009 (a string default; list only from a recipe)
        "garage-bAInd/Open-Platypus",
        "the Platypus training set (Hub id or local file); a list in a recipe mixes sources")
    data_split: str = knob("train", "Open-Platypus ships a single train split")
    output_dir: str = knob("out", "the adapter lands in OUTPUT_DIR/adapter/")
    prompt_template: str = knob(
        "auto", "chat for conversational data with a chat template, else alpaca (as Platypus)")

    # --- optimisation (the published A3Duck table) -------------------------------------------
    learning_rate: float = knob(4e-4, "published value; tuned for LoRA, IA3 often wants ~10x more")
    lr_scheduler: str = knob("cosine", "published value")
    warmup_steps: int = knob(100, "published value")
    weight_decay: float = knob(
        0.0, "published value: IA3 vectors start at 1.0, decay would pull to 0")
    num_epochs: float = knob(1.0, "published value: one pass over Open-Platypus")
    max_steps: int = knob(-1, "-1 = run num_epochs; set for smoke runs and demos")
    batch_size: int = knob(16, "published global batch (examples per optimizer step)")
    micro_batch_size: int = knob(1, "published per-device batch; accumulation = batch / micro")
    seed: int = knob(42, "fixed so runs are reproducible")
    max_grad_norm: float = knob(1.0, "Trainer default; guards the first steps of warmup")

    # --- sequence handling ------------------------------------------------------------------
    cutoff_len: int = knob(4096, "published value: Llama-2's context window")
    train_on_inputs: bool = knob(False, "published: loss only on the answer, prompts are masked")
    add_eos_token: bool = knob(False, "published value; Platypus still ended each example with "
                               "EOS (its finetune.py L189): True reproduces that")
    group_by_length: bool = knob(False, "published value (it distorts the loss curve)")
    too_long: Literal["truncate", "drop"] = knob(
        "truncate", "rows over cutoff: cut (as Platypus did)")
    skip_bad_rows: bool = knob(
        False, "invalid rows stop the run by default; True drops and reports")
    packing: bool = knob(False, "the original did not pack; True = padding-free packing (faster)")
    streaming: bool = knob(
        False, "read data as a stream (sets too big for memory); needs max_steps")

    # --- IA3 (PEFT's Llama defaults) ---------------------------------------------------------
    # knob() is dataclasses.field() with the reason attached (no shared mutable default).
    target_modules: list[str] | None = knob(  # noqa: RUF009
        None, "None = PEFT's per-architecture defaults (k,v,down)")
    feedforward_modules: list[str] | None = knob(  # noqa: RUF009
        None, "None = PEFT default (down_proj on Llama)")

    # --- hardware / bookkeeping --------------------------------------------------------------
    precision: Literal["auto", "bf16", "fp32"] = knob(
        "auto", "bf16 on GPUs and on CPUs with bf16 units (fp16 hit NaNs); fp32 elsewhere")
    attn_implementation: Literal["auto", "sdpa", "eager", "sdpa_varlen", "flex_attention",
                                 "flash_attention_2", "flash_attention_3"] = knob(
        "auto", "fastest exact kernel for packed rows on this machine (a3duck.fastpath)")
    compile: Literal["auto", "always", "never"] = knob(
        "auto", "on CUDA; off on CPU (compiling takes minutes there); YAML true/false allowed")
    loss: Literal["auto", "label_positions", "trl_fused"] = knob(
        "auto", "LM head only at labelled positions (exact; prompt positions skip it)")
    gradient_checkpointing: bool = knob(False, "trades ~30% speed for memory; off unless needed")
    quantization: Literal["none", "4bit", "8bit"] = knob("none", "bitsandbytes base (GPU only)")
    logging_steps: int = knob(1, "one log line per optimizer step")
    save_steps: int = knob(200, "checkpoint interval in optimizer steps (Platypus used 200)")
    save_total_limit: int = knob(2, "keep the last two checkpoints")
    device: str = knob("auto", "\"auto\" = Trainer picks; \"cpu\" forces CPU")

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

    def validate(self, source: str = "config") -> None:
        """Coerce every field to its type and raise one ConfigError naming every problem."""
        values, problems = coerce_all(self.__dict__, field_types())
        problems += value_problems(values, skip={name for name, _ in problems})
        if problems:
            raise ConfigError(format_problems(source, problems))
        self.__dict__.update(values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with the given non-None overrides applied (and validated)."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **clean)


def field_names() -> list[str]:
    return [f.name for f in fields(TrainConfig)]


@functools.cache
def field_types() -> dict[str, Any]:
    """Each field's type annotation, evaluated (the module uses postponed annotations)."""
    return typing.get_type_hints(TrainConfig)


def from_dict(raw: dict[str, Any], source: str = "recipe",
              flags: frozenset[str] = frozenset()) -> TrainConfig:
    """Build a TrainConfig from a mapping in one pass: unknown keys, wrong types and unusable
    values are all named in one ConfigError (``flags``: fields set on the command line)."""
    values, problems = coerce_all(raw, field_types())
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    problems += value_problems({**defaults, **values}, skip={name for name, _ in problems})
    if problems:
        raise ConfigError(format_problems(source, problems, set(flags)))
    return TrainConfig(**values)


def read_recipe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a YAML recipe; ConfigError for a missing, non-UTF-8 or invalid file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"recipe file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}); save the recipe as "
                          "UTF-8") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        what = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{p}: invalid YAML{at}: {what}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: a recipe must be a YAML mapping of config fields")
    return raw


def load_config(path: str | os.PathLike[str]) -> TrainConfig:
    """Read a YAML recipe (a mapping of TrainConfig fields)."""
    raw = read_recipe(path)
    raw.pop(MIX_KEY, None)  # how a mixed adapter was made; not a training setting
    return from_dict(raw, source=str(path))


def resolve(recipe: str | os.PathLike[str] | None, overrides: dict[str, Any]) -> TrainConfig:
    """Defaults, then the recipe, then command-line overrides (None = not given), validated
    together so that one message names every problem of recipe and overrides."""
    given = {k: v for k, v in overrides.items() if v is not None}
    raw = {**(read_recipe(recipe) if recipe else {}), **given}
    source = " + ".join(([str(recipe)] if recipe else []) + (["command line"] if given else []))
    return from_dict(raw, source=source or "defaults", flags=frozenset(given))


def save_config(config: TrainConfig | dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML, atomically (temp file + rename)."""
    data = config.to_dict() if isinstance(config, TrainConfig) else dict(config)
    atomic_write_text(Path(path), yaml.safe_dump(data, sort_keys=False))


def describe_fields() -> list[dict[str, str]]:
    """Each TrainConfig field with its type, default and the one-line reason for the default."""
    return [{"name": f.name, "type": str(f.type), "default": repr(f.default),
             "reason": f.metadata.get("why", "")} for f in fields(TrainConfig)]


def reference_markdown() -> str:
    """docs/configuration.md: every field of TrainConfig (generated; see tests)."""
    lines = ["# Configuration reference", "",
             ("Generated from `a3duck/config.py` by `python -m a3duck.config > "
              "docs/configuration.md`; a test fails when it drifts. Defaults are the published "
              "A3Duck recipe. Set fields in a YAML recipe (`recipes/*.yaml`) or with the "
              "`a3duck train` flag of the same name (`warmup_steps` is `--warmup-steps`; "
              "booleans also have `--no-...`; `a3duck train --help`)."), "",
             "| field | type | default | why |", "|---|---|---|---|"]
    for f in describe_fields():
        lines.append(f"| `{f['name']}` | `{f['type']}` | `{f['default']}` | {f['reason']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
