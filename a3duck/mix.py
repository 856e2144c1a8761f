"""Adapter arithmetic: combine IA3 adapters of one base into a new, ordinary PEFT IA3 adapter.

``multiplicative`` (the default) multiplies the scales raised to the weights,
``l = prod_i l_i ** w_i`` (a weight left out is 1). IA3 rescales activations, so applying adapter
A and then adapter B to the same layer *is* multiplying by ``l_A * l_B``: a multiplicative mix
with weights 1 is the two adapters stacked, and a weight of 0.5 is "half" an adapter in log
space. ``linear`` is PEFT's ``add_weighted_adapter`` for IA3, ``l = sum_i w_i * l_i`` (weights
left out are 1/N: the average).

Every source must record the same base model and adapt the same modules with the same shapes
(else :class:`AdapterMismatchError` before anything is written). The result is written to a
temporary folder and renamed into place (:func:`a3duck.files.replacing_folder`):
PEFT's config and weights files, the first source's tokenizer, a model card that says it is a
mix (written by the caller's ``write_card``), and a3duck's config file with the base, the prompt
template and a ``mix`` section (mode, and for each source: where from, revision, sha256, weight).
File names: :mod:`a3duck.adapter_folder`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from a3duck import adapter_folder as af
from a3duck.config import MIX_KEY, save_config
from a3duck.errors import AdapterMismatchError, ConfigError
from a3duck.files import replacing_folder
from a3duck.files import sha256_file as sha256  # noqa: F401  (published name)
from a3duck.limits import check_number, non_finite
from a3duck.outputs import check_output, output_lock

log = logging.getLogger(__name__)

MODES = ("multiplicative", "linear")


@dataclass(frozen=True)
class MixSource:
    source: str  # the folder or Hub id as given
    weight: float | None  # None: the mode's default
    folder: Path
    revision: str | None  # the Hub commit the snapshot came from (None for local folders)


def parse_spec(spec: str) -> tuple[str, float | None]:
    """``DIR_OR_HUB_ID[:WEIGHT]`` -> (source, weight or None)."""
    source, sep, tail = spec.rpartition(":")
    if not sep:
        return spec, None
    try:
        return source, float(tail)
    except ValueError:
        return spec, None  # a colon that is part of the name


def resolve_sources(specs: list[str]) -> list[MixSource]:
    parsed = [_checked_spec(spec) for spec in specs]  # every weight checked before any download
    out = []
    for source, weight in parsed:
        folder = af.resolve(source)
        revision = folder.name if folder.parent.name == "snapshots" else None
        out.append(MixSource(source, weight, folder, revision))
    return out


def _checked_spec(spec: str) -> tuple[str, float | None]:
    """:func:`parse_spec`, with the source non-empty and the weight finite (a3duck.limits)."""
    source, weight = parse_spec(spec)
    if not source.strip():
        raise ConfigError(f"--adapter {spec!r}: names no adapter (give DIR_OR_HUB_ID[:WEIGHT])")
    if weight is not None:
        check_number(f"--adapter {spec}: the weight", weight)
    return source, weight


def check_compatible(sources: list[MixSource], tensors: list[dict]) -> None:
    """Same recorded base, same modules, same shapes; AdapterMismatchError naming the odd one."""
    first = sources[0]
    base = af.recorded_base(first.folder)
    shapes = {k: tuple(v.shape) for k, v in tensors[0].items()}
    for src, tens in zip(sources[1:], tensors[1:]):
        other = af.recorded_base(src.folder)
        if other != base:
            raise AdapterMismatchError(
                f"cannot mix adapters of different bases: {first.source} was trained on "
                f"{base!r}, {src.source} on {other!r}")
        theirs = {k: tuple(v.shape) for k, v in tens.items()}
        if theirs != shapes:
            diff = sorted(set(shapes) ^ set(theirs)) or sorted(
                k for k in shapes if shapes[k] != theirs[k])
            raise AdapterMismatchError(
                f"cannot mix {first.source} and {src.source}: they adapt different modules "
                f"or shapes (first difference: {diff[0]}). Mix adapters trained with the "
                "same target_modules and feedforward_modules.")


def weights_for(sources: list[MixSource], mode: str) -> list[float]:
    default = 1.0 if mode == "multiplicative" else 1.0 / len(sources)
    return [default if s.weight is None else s.weight for s in sources]


def combine(tensors: list[dict[str, torch.Tensor]], weights: list[float], mode: str
            ) -> dict[str, torch.Tensor]:
    """The mixed vectors, computed in float64 and stored in the first adapter's dtype."""
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    out = {}
    for key, first in tensors[0].items():
        parts = [t[key].double() for t in tensors]
        if mode == "linear":
            value = sum(w * p for w, p in zip(weights, parts))
        else:
            if any(w != int(w) and bool((p <= 0).any()) for w, p in zip(weights, parts)):
                raise ConfigError(f"{key}: a fractional weight needs positive scales")
            value = torch.ones_like(parts[0])
            for w, p in zip(weights, parts):
                value = value * p ** w
        out[key] = value.to(first.dtype).contiguous()
    _require_finite_result(out, weights, mode)
    return out


def _require_finite_result(mixed: dict[str, torch.Tensor], weights: list[float], mode: str
                           ) -> None:
    """Refuse weights whose mix is not finite in the adapter's dtype (never clamped)."""
    found = non_finite(mixed)
    if found is not None:
        raise ConfigError(
            f"the {mode} mix with weights {', '.join(f'{w:g}' for w in weights)} is not finite "
            f"({found[0]} gets {found[1]} NaN / {found[2]} infinite values in "
            f"{mixed[found[0]].dtype}): use smaller weights; nothing was written")


def mix_adapters(specs: list[str], output_dir: str | Path, mode: str = "multiplicative",
                 write_card: Callable[[Path, str], None] | None = None) -> Path:
    """Mix the adapters named by ``specs`` into ``output_dir`` (atomically). Returns it.

    ``write_card(folder, name)`` writes the model card into the folder being built (the
    command passes the publish package's renderer: the core does not import it)."""

    if not specs:
        raise ConfigError("give at least one --adapter to mix")
    out = Path(output_dir)
    _check_new(out)
    check_output(out, "--output-dir")
    with output_lock(out):
        _check_new(out)  # again: a run that held the lock may have written it meanwhile
        return _mix(specs, out, mode, write_card)


def _check_new(out: Path) -> None:
    if out.exists():
        raise ConfigError(f"{out} already exists: choose another --output-dir or remove it")


def _mix(specs: list[str], out: Path, mode: str, write_card) -> Path:
    from safetensors.torch import save_file

    sources = resolve_sources(specs)
    tensors = [af.tensors(s.folder) for s in sources]
    check_compatible(sources, tensors)
    weights = weights_for(sources, mode)
    mixed = combine(tensors, weights, mode)
    with replacing_folder(out, replace=False) as tmp:
        first = sources[0].folder
        shutil.copy(first / af.ADAPTER_CONFIG, tmp / af.ADAPTER_CONFIG)
        save_file(mixed, str(tmp / af.ADAPTER_WEIGHTS), metadata={"format": "pt"})
        for name in af.tokenizer_files(first):
            shutil.copy(first / name, tmp / name)
        save_config(mix_record(sources, weights, mode), tmp / af.TRAIN_CONFIG)
        if write_card:
            write_card(tmp, out.name)
    log.info("mixed %d adapter(s) (%s) into %s", len(sources), mode, out)
    return out


def mix_record(sources: list[MixSource], weights: list[float], mode: str) -> dict:
    """What a mix's training-config file holds: the fields a Space needs + the recipe."""
    return {
        "base_model": af.recorded_base(sources[0].folder),
        "prompt_template": af.template(sources[0].folder),
        MIX_KEY: {"mode": mode, "sources": [
            {"adapter": s.source, "revision": s.revision, "weight": w,
             "sha256": af.weights_sha256(s.folder)}
            for s, w in zip(sources, weights)]},
    }
