"""`a3duck export`: an IA3 adapter as a merged safetensors folder, a GGUF (+ Ollama Modelfile)
or a PEFT LoRA adapter, written atomically into one output folder (temp folder, then rename).

Refused before any weights are read, one message each: an unknown format or outtype, an output
folder that exists and is not empty (unless ``overwrite``), an adapter whose base cannot be
found (models.resolve_base_model's message), a quantised base (merging needs real weights).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

from a3duck import adapter_folder, models
from a3duck.adapter_folder import TOKENIZER_FILES, TRAIN_CONFIG
from a3duck.config import EXPORT_KEY, save_config
from a3duck.errors import ExportError
from a3duck.export import fidelity, gguf, lora, modelfile
from a3duck.files import atomic_write_text, public_name, replacing_folder
from a3duck.outputs import check_output, output_lock
from a3duck.scratch import temp_folder

log = logging.getLogger(__name__)

FORMATS = ("gguf", "safetensors", "lora")
RANKS_HELP = "N (an integer), full (exact) or auto (smallest rank within --max-kl)"
# Mean KL (nats/position) --rank auto must stay within; see docs/export.md for why.
DEFAULT_MAX_KL = 0.01


def check_request(fmt: str, outtype: str, rank: str, output_dir: Path, overwrite: bool) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "gguf" and outtype not in gguf.OUTTYPES:
        raise ExportError(f"--outtype must be one of {', '.join(gguf.OUTTYPES)}, got {outtype!r}")
    if fmt == "lora" and rank not in ("full", "auto") and not (rank.isdigit() and int(rank) > 0):
        raise ExportError(f"--rank must be {RANKS_HELP}, got {rank!r}")
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())) \
            and not overwrite:
        raise ExportError(f"{output_dir} exists and is not empty: choose another --output-dir "
                          "or pass --overwrite to replace it")


def resolve_base(adapter: str, base: str | None) -> tuple[Path, str]:
    """(adapter folder, base name); ExportError for a quantised base."""
    adapter_dir = adapter_folder.resolve(adapter)
    base_name = base or adapter_folder.base_of(adapter_dir)
    path = Path(models.resolve_base_model(base_name))
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if config.get("quantization_config"):
        method = config["quantization_config"].get("quant_method", "quantised")
        raise ExportError(f"base model {base_name!r} is stored quantised ({method}); an IA3 "
                          "adapter is merged into real weights: pass the full-precision base "
                          "with --base-model")
    return adapter_dir, base_name


def export(adapter: str, output_dir: str | Path, fmt: str, *, outtype: str = "f16",
           rank: str = "auto", max_kl: float = DEFAULT_MAX_KL, base: str | None = None,
           data: str | None = None, overwrite: bool = False) -> dict:
    """Export ``adapter`` into ``output_dir``; returns what was written and measured."""
    out = Path(output_dir)
    check_request(fmt, outtype, str(rank), out, overwrite)
    check_output(out, "--output-dir")
    with output_lock(out):
        return _export(adapter, out, fmt, outtype, rank, max_kl, base, data)


def _export(adapter, out, fmt, outtype, rank, max_kl, base, data) -> dict:
    adapter_dir, base_name = resolve_base(adapter, base)
    if fmt == "safetensors":
        models.merge_adapter(adapter, out, base=base, replace=True)
        return {"format": fmt, "output_dir": str(out)}
    if fmt == "gguf":
        return _gguf(adapter, adapter_dir, base, out, outtype)
    return _lora(adapter, adapter_dir, base_name, base, out, str(rank), max_kl, data)


def _gguf(adapter: str, adapter_dir: Path, base: str | None, out: Path, outtype: str) -> dict:
    merged, tokenizer = models.load_merged(adapter, base)
    name = f"{adapter_dir.name}-{outtype}.gguf" if adapter_dir.name != "adapter" else \
        f"{adapter_dir.parent.name}-{outtype}.gguf"
    template = adapter_folder.template(adapter_folder.resolve(adapter))
    with temp_folder("tokenizer") as tok_dir, replacing_folder(out) as tmp:
        tokenizer.save_pretrained(tok_dir)
        gguf.write_gguf(merged, tokenizer, Path(tok_dir), tmp / name, outtype,
                        name.removesuffix(".gguf"))
        atomic_write_text(tmp / "Modelfile", modelfile.modelfile(name, template, tokenizer))
        atomic_write_text(tmp / "README.md", _gguf_readme(name, adapter, outtype))
        save_config(_record(adapter, template, {"format": "gguf", "outtype": outtype,
                                                "file": name}), tmp / TRAIN_CONFIG)
    log.info("wrote %s", out / name)
    return {"format": "gguf", "output_dir": str(out), "file": name}


def _lora(adapter, adapter_dir, base_name, base, out, rank, max_kl, data) -> dict:
    ia3, tokenizer = models.load(base, adapter, dtype=torch.float32, device="cpu")
    batches = fidelity.held_out_ids(adapter, tokenizer, data)
    reference = fidelity.logits_of(ia3, batches)  # the IA3 model itself, unmerged
    plain = ia3.unload()  # the base, PEFT's wrappers removed (not merged)
    factors = lora.factorise(adapter_folder.tensors(adapter_dir), plain)
    full = lora.full_rank(factors)
    tried = {}
    for r in _ranks(rank, full):
        with lora.applied(plain, factors, r) as patched:
            tried[r] = fidelity.compare(reference, fidelity.logits_of(patched, batches))
        log.info("rank %d: %s", r, tried[r].line())
        if rank != "auto" or tried[r].mean_kl <= max_kl:
            break
    chosen = max(tried) if rank != "auto" else next(
        (r for r, f in tried.items() if f.mean_kl <= max_kl), max(tried))
    result = tried[chosen]
    record = {"format": "lora", "rank": chosen, "rank_asked": rank, "full_rank": full,
              "max_kl": max_kl if rank == "auto" else None,
              "held_out": public_name(data) if data else "a3duck built-in prompts",
              **result.as_dict()}
    template = adapter_folder.template(adapter_folder.resolve(adapter))
    with replacing_folder(out) as tmp:
        lora.write_lora(tmp, factors, chosen, base_name)
        for file in TOKENIZER_FILES:
            if (adapter_dir / file).is_file():
                shutil.copy(adapter_dir / file, tmp / file)
        save_config(_record(adapter, template, record), tmp / TRAIN_CONFIG)
        atomic_write_text(tmp / "README.md", _lora_readme(adapter, base_name, record, result))
    return {**record, "output_dir": str(out), "line": result.line()}


def _ranks(rank: str, full: int) -> list[int]:
    if rank == "full":
        return [full]
    if rank == "auto":
        return lora.candidate_ranks(full)
    return [min(int(rank), full)]


def _record(adapter: str, template: str, export: dict) -> dict:
    """The training-config record (adapter_folder.TRAIN_CONFIG) of an export: the adapter's recorded training config (when it has one),
    and an ``export`` section saying how it was made and how close it is."""
    trained = adapter_folder.train_config(adapter_folder.resolve(adapter))
    base = trained.to_dict() if trained else {}
    return {**base, "prompt_template": template,
            EXPORT_KEY: {"from_adapter": public_name(adapter), **export}}


def _gguf_readme(name: str, adapter: str, outtype: str) -> str:
    return (f"# {name.removesuffix('.gguf')}\n\n"
            f"The IA3 adapter `{public_name(adapter)}` merged into its base and written as one "
            f"GGUF file (`{outtype}`) by `a3duck export`, with an Ollama Modelfile.\n\n"
            f"- llama.cpp: `llama-cli -m {name} -cnv`\n"
            "- Ollama: `ollama create my-model -f Modelfile && ollama run my-model`\n"
            f"- LM Studio: import `{name}`\n")


def _lora_readme(adapter, base_name, record, result) -> str:
    return (f"# LoRA export of {public_name(adapter)}\n\n"
            f"An ordinary PEFT LoRA adapter (r = {record['rank']}, lora_alpha = r) for "
            f"`{base_name}`, from the truncated SVD of each IA3 layer's change by "
            f"`a3duck export --format lora` (full rank: {record['full_rank']}).\n\n"
            f"Fidelity against the IA3 adapter on held-out prompts ({record['held_out']}): "
            f"{result.line()}.\n\n"
            "Load it with `PeftModel.from_pretrained(base, this_folder)`, or serve it on any "
            "LoRA server (vLLM `--enable-lora`, SGLang, llama.cpp's convert_lora_to_gguf.py).\n")
