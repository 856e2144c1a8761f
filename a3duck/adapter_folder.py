"""The adapter folder: every file name in it and every reader of it.

An adapter folder is what `a3duck train` (or `a3duck mix`) writes and what `a3duck push`
uploads::

    adapter_config.json        PEFT's config: the recorded base (base_model_name_or_path), modules
    adapter_model.safetensors  the IA3 vectors (safetensors only)
    a3duck_config.yaml         the resolved TrainConfig (or a mix's record)
    train_metrics.json         steps, tokens, losses, wall time of the run
    data_report.json           what happened to every training row
    README.md                  the model card (`a3duck card`)
    tokenizer files            the tokenizer the adapter was trained with
    plots/*.png                IA3 plots (`a3duck inspect --out ADAPTER/plots`)

and ``eval_results.json`` from `a3duck eval` lies in the folder or beside it. Every command
(train, mix, inspect, multi-adapter serving, the Space's zoo, card, push) reads the folder
through this module, so a missing or corrupt file gives the same message everywhere
(:class:`~a3duck.errors.ModelError`, or :class:`~a3duck.errors.AdapterMismatchError` for an
adapter that is not IA3).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from a3duck.embedded import EMBEDDED_MODEL_ID
from a3duck.errors import AdapterMismatchError, ModelError
from a3duck.hub_access import hub_problem, looks_like_path, snapshot
from a3duck.prompts import ALPACA_NAME, AUTO_NAME

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
TRAIN_CONFIG = "a3duck_config.yaml"
TRAIN_METRICS = "train_metrics.json"
DATA_REPORT = "data_report.json"
EVAL_RESULTS = "eval_results.json"
COMPARE_RESULTS = "compare.json"  # `a3duck compare --output` as make demo writes it (run folder)
CARD = "README.md"
CARD_TAG = "a3duck"  # the card metadata tag saying a3duck rendered it (not PEFT's placeholder)
PLOTS = "plots"
HEATMAP = "ia3_heatmap.png"  # the IA3 plot the Space shows (plots/ia3_heatmap.png)
TOKENIZER_CONFIG = "tokenizer_config.json"
VOCABULARY = "tokenizer.json"  # written by the tokenizers library (no path fields)
TOKENIZER_FILES = (TOKENIZER_CONFIG, VOCABULARY, "tokenizer.model",
                   "special_tokens_map.json", "added_tokens.json", "chat_template.jinja")
RECORDED_BASE = "base_model_name_or_path"  # PEFT's field in adapter_config.json
HUB_EVAL_DIR = ".eval_results"  # huggingface_hub's EVAL_RESULTS_FOLDER (checked by a test)
HUB_EVAL_ENTRIES = "a3duck.yaml"  # our file in it: the Hub's eval-results entries of the card
PEFT_PREFIX = "base_model.model."  # PEFT's prefix of every tensor key
# What an adapter repo needs (globs relative to the folder); never checkpoints, optimizer
# states or logs; the Hub's eval-results entries are the ones `a3duck card` writes.
UPLOAD_FILES = (ADAPTER_WEIGHTS, ADAPTER_CONFIG, TRAIN_CONFIG, TRAIN_METRICS, DATA_REPORT, CARD,
                *TOKENIZER_FILES, f"{PLOTS}/*.png", f"{HUB_EVAL_DIR}/*.yaml")


# ----------------------------------------------------------------------------- finding it

def resolve(adapter: str, revision: str | None = None) -> Path:
    """A local folder holding the adapter (downloading a Hub id once into the HF cache)."""
    p = Path(adapter).expanduser()
    if p.is_dir():
        return require(p).resolve()
    if looks_like_path(adapter):
        raise ModelError(f"adapter folder not found: {adapter}")
    try:
        return Path(snapshot(adapter, revision=revision))
    except Exception as exc:  # noqa: BLE001 - explained to the user by its kind
        # OWNER/NAME and DIR/adapter look alike: say both readings (a typo'd run folder is the
        # common case, and calling it a Hub id alone misleads).
        raise ModelError(f"cannot find adapter {adapter!r}: there is no folder {adapter} here, "
                         f"and as a Hub id: {hub_problem(adapter, revision, exc)}. Pass an "
                         "existing adapter folder (the adapter/ inside a --output-dir of "
                         "`a3duck train`) or a Hub id.") from None


def require(folder: Path, error: type[Exception] = ModelError) -> Path:
    """``folder`` if it is an adapter folder (it has adapter_config.json); ``error`` if not."""
    folder = Path(folder)
    if not (folder / ADAPTER_CONFIG).is_file():
        raise error(f"{folder} is not an adapter folder: {ADAPTER_CONFIG} is missing")
    return folder


# ----------------------------------------------------------------------------- PEFT's files

def read_config(folder: Path) -> dict[str, Any]:
    """adapter_config.json as a dict; ModelError naming the file if it does not parse."""
    return read_json(Path(folder) / ADAPTER_CONFIG)


def recorded_base(folder: Path | None) -> str | None:
    """The base model id the adapter was trained on (as PEFT recorded it), or None."""
    return read_config(folder).get(RECORDED_BASE) if folder else None


def base_of(folder: Path | None) -> str:
    """The base model to use when none is given: the adapter's recorded base, else the
    embedded default."""
    return recorded_base(folder) or EMBEDDED_MODEL_ID


def record_base(peft_model, hub_id: str) -> None:
    """Make a PEFT model save ``hub_id`` as its base (never the local folder it came from)."""
    setattr(peft_model.peft_config["default"], RECORDED_BASE, hub_id)


def weights_file(folder: Path) -> Path:
    """The weights file; ModelError if it is missing."""
    weights = Path(folder) / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise ModelError(f"{folder}: {ADAPTER_WEIGHTS} is missing (safetensors only)")
    return weights


def weights_sha256(folder: Path) -> str:
    """The sha256 of the weights file: the adapter's identity in eval results, mixes and DPO
    records (folder names are not: every run's folder is called ``adapter``)."""
    from a3duck.files import sha256_file

    return sha256_file(weights_file(folder))


def tensors(folder: str | Path):
    """The tensors of the folder's weights file, PEFT's key names; ModelError if missing or
    unreadable."""
    return read_weights(weights_file(Path(folder)))


def read_weights(path: str | Path):
    """Every tensor of a safetensors file; any failure is ModelError naming the file."""
    from safetensors.torch import load_file

    try:
        found = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - header, size, dtype: all mean the file is damaged
        raise ModelError(f"adapter file {path} is corrupt or truncated ({type(exc).__name__}: "
                         f"{exc}); copy or download it again, or retrain") from None
    if not found:
        raise ModelError(f"adapter file {path} is corrupt or truncated (it holds no tensors)")
    from a3duck.limits import require_finite

    require_finite(found, path)  # a NaN adapter is never loaded (nor served)
    return found


def ia3_vectors(folder: Path):
    """``{module name: ia3_l vector}`` (PEFT naming, prefix and suffix removed);
    AdapterMismatchError if the folder holds other tensors than IA3 vectors."""
    out = {}
    for key, value in tensors(folder).items():
        if not key.endswith(".ia3_l"):
            raise AdapterMismatchError(f"{folder} is not an IA3 adapter: it holds {key!r}")
        out[key.removeprefix(PEFT_PREFIX).removesuffix(".ia3_l")] = value
    return out


# ----------------------------------------------------------------------------- a3duck's files

def train_record(folder: Path) -> dict | None:
    """a3duck_config.yaml as written (a TrainConfig or a mix's record), or None."""
    import yaml

    path = Path(folder) / TRAIN_CONFIG
    if not path.is_file():
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ModelError(f"{path} is not valid YAML ({exc}); copy it again or retrain") from None


def train_config(folder: Path):
    """The TrainConfig an a3duck adapter was trained with, or None for other PEFT adapters."""
    from a3duck.config import load_config

    path = Path(folder) / TRAIN_CONFIG
    return load_config(path) if path.is_file() else None


def template(folder: Path | None) -> str:
    """The prompt template an adapter was trained with (alpaca for other or no adapters, and
    for a3duck adapters older than the ``auto`` default)."""
    trained = train_config(folder) if folder else None
    name = trained.prompt_template if trained else ALPACA_NAME
    return ALPACA_NAME if name == AUTO_NAME else name


def trained_quantized(folder: Path) -> bool:
    config = train_config(folder)
    return config is not None and config.quantization != "none"


def has_tokenizer(folder: Path) -> bool:
    return (Path(folder) / TOKENIZER_CONFIG).is_file()


def tokenizer_files(folder: Path) -> list[str]:
    """The tokenizer files present in ``folder`` (names relative to it)."""
    return [name for name in TOKENIZER_FILES if (Path(folder) / name).is_file()]


def read_json(path: Path) -> Any:
    """A JSON file of the folder; ModelError naming the file if it does not parse."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not valid JSON ({exc})") from None


def train_metrics(folder: Path) -> dict | None:
    """train_metrics.json, or None when the folder has none (a mix, a foreign adapter)."""
    path = Path(folder) / TRAIN_METRICS
    return read_json(path) if path.is_file() else None


def data_report(folder: Path) -> dict | None:
    """data_report.json, or None when the folder has none."""
    path = Path(folder) / DATA_REPORT
    return read_json(path) if path.is_file() else None


def write_run_records(folder: Path, metrics: dict, report: dict) -> None:
    """train_metrics.json and data_report.json of a training run (into a folder being built)."""
    (Path(folder) / TRAIN_METRICS).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    (Path(folder) / DATA_REPORT).write_text(json.dumps(report, indent=2), encoding="utf-8")


def eval_results_candidates(folder: Path) -> list[Path]:
    """Where `a3duck eval` leaves an adapter's results: in the folder, or beside it."""
    return [Path(folder) / EVAL_RESULTS, Path(folder).parent / EVAL_RESULTS]


def compare_results_candidates(folder: Path) -> list[Path]:
    """Where an adapter's `a3duck compare --output` results are looked for: in the folder, or
    beside it (make demo: out/compare.json for out/adapter)."""
    return [Path(folder) / COMPARE_RESULTS, Path(folder).parent / COMPARE_RESULTS]


def default_eval_output(adapter: str | None) -> Path:
    """`a3duck eval`'s default results file: beside a local adapter folder, else ./"""
    if adapter and Path(adapter).expanduser().is_dir():
        return Path(adapter).expanduser().parent / EVAL_RESULTS
    return Path(EVAL_RESULTS)


def shipped_heatmap(folder: Path) -> Path | None:
    """plots/ia3_heatmap.png if the folder ships one."""
    path = Path(folder) / PLOTS / HEATMAP
    return path if path.is_file() else None
