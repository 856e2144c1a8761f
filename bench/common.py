"""Shared pieces of the bench scripts: model choice (real weights or a random-init shape),
training-data sampling, memory probes, tables and JSON output.

``--model-shape`` builds a randomly initialised Llama directly on the target device (no download,
no disk): ``tiny`` for smoke tests, ``llama2-13b`` for the real A3Duck shape on a GPU machine.
Random weights still need a tokenizer for the data path; its ids are folded into the shape's
vocabulary (only sequence lengths matter for speed).
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # benches never download; the embedded model is local

from a3duck import adapter_folder
from a3duck.embedded import EMBEDDED_MODEL_ID as EMBEDDED

DEMO_DATA = ROOT / "data" / "demo" / "train.jsonl"
INSTRUCT_DATA = ROOT.parent / "shared" / "data" / "instruct" / "codegen-instruct.json"
CARRY = ROOT / "bench" / ".carry"  # git-ignored folder a GPU run carries (see bench/gpu.sh)


def default_sources() -> list[Path]:
    """The demo data plus the instruction set (the carried copy on a GPU machine)."""
    carried = CARRY / INSTRUCT_DATA.name
    return [DEMO_DATA, carried if carried.is_file() else INSTRUCT_DATA]


# Llama-2 shapes: hidden, layers, heads, kv heads, intermediate, vocab.
SHAPES = {
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 1024},
    "llama2-13b": {"hidden_size": 5120, "num_hidden_layers": 40, "num_attention_heads": 40,
                       "num_key_value_heads": 40, "intermediate_size": 13824, "vocab_size": 32000},
}


def add_model_arguments(parser) -> None:
    parser.add_argument("--model", default=EMBEDDED,
                        help="Hub id or local folder of real weights (default: embedded SmolLM2)")
    parser.add_argument("--model-shape", choices=sorted(SHAPES),
                        help="use a random-init Llama of this shape instead of --model "
                             "(llama2-13b = the A3Duck base's shape; tiny = smoke tests)")
    parser.add_argument("--tokenizer",
                        help="tokenizer folder for --model-shape (default: bench/.carry/tokenizer "
                             "or the embedded SmolLM2's)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto",
                        help="weights dtype (auto: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")


def torch_dtype(args):
    import torch

    if args.dtype == "auto":
        return torch.bfloat16 if str(args.device).startswith("cuda") else torch.float32
    return getattr(torch, args.dtype)


def tokenizer_path(args) -> str:
    """The tokenizer folder for this run; a clear error when a shape run has none."""
    from a3duck import models

    if not args.model_shape:
        return models.resolve_base_model(args.model)
    candidates = [args.tokenizer] if args.tokenizer else [str(CARRY / "tokenizer")]
    if not args.tokenizer:
        from a3duck import embedded

        candidates.append(str(embedded.model_dir()))
    for path in candidates:
        if path and adapter_folder.has_tokenizer(Path(path)):
            return path
    raise SystemExit(f"--model-shape needs a tokenizer: none of {candidates} holds one; pass "
                     "--tokenizer DIR (any Hugging Face tokenizer folder)")


def load_tokenizer(args):
    from a3duck import models

    return models.load_tokenizer(tokenizer_path(args))


def shape_config(name: str):
    from transformers import LlamaConfig

    return LlamaConfig(**SHAPES[name], max_position_embeddings=4096, rms_norm_eps=1e-5,
                       bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)


def build_base(args, dtype=None):
    """The base causal LM on ``args.device`` in eval mode: real weights or a random-init shape
    (``dtype``: default ``--dtype``)."""
    import torch

    from a3duck import models

    dtype = dtype or torch_dtype(args)
    if not args.model_shape:
        model, _ = models.load_base(args.model, dtype=dtype, device=args.device)
        return model.eval()
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    with torch.device(args.device):  # build in place: a 13B model never touches the CPU
        model = LlamaForCausalLM._from_config(shape_config(args.model_shape), dtype=dtype)
    return model.eval()


def vocab_size(args, tokenizer) -> int | None:
    """The id bound to fold token ids into, or None when the tokenizer matches the model."""
    return SHAPES[args.model_shape]["vocab_size"] if args.model_shape else None


# ----------------------------------------------------------------------------- data

def _instruction_row(row: dict) -> dict | None:
    """An Alpaca-schema row; a conversation gives its last user turn and answer."""
    turns = row.get("messages")
    if isinstance(turns, list) and len(turns) >= 2:
        row = {"instruction": turns[-2].get("content"), "output": turns[-1].get("content")}
    answer = row.get("output") or row.get("response")
    if not row.get("instruction") or not answer:
        return None
    return {"instruction": row["instruction"], "input": row.get("input") or "", "output": answer}


def sample_rows(sources: list[Path], n: int, seed: int = 0) -> tuple[list[dict], dict]:
    """``n`` instruction rows drawn evenly from the readable ``sources`` (Alpaca schema).

    Returns (rows, {source: rows drawn}); missing files are skipped and reported as 0."""
    from a3duck import data

    pools, used = [], {}
    for src in sources:
        if not Path(src).is_file():
            used[str(src)] = 0
            continue
        rows = [r for r in map(_instruction_row, data.load_rows(str(src))) if r]
        pools.append((str(src), rows))
    if not pools:
        raise SystemExit(f"no training data found in {[str(s) for s in sources]}")
    rng = random.Random(seed)
    picked = []
    for i, (name, rows) in enumerate(pools):
        k = n // len(pools) + (1 if i < n % len(pools) else 0)
        take = rng.sample(rows, k) if k <= len(rows) else [rng.choice(rows) for _ in range(k)]
        used[name] = k
        picked += take
    rng.shuffle(picked)
    return picked, {public_path(k): v for k, v in used.items()}


def public_path(path) -> str:
    """A data source name without this machine's folders (results files are published)."""
    p = Path(path).resolve()
    for base in (ROOT, ROOT.parent):
        if p.is_relative_to(base):
            return str(p.relative_to(base))
    return p.name


# ----------------------------------------------------------------------------- measuring

def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB


def sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def machine(args) -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "device": str(args.device)}
    if str(args.device).startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import peft
        import transformers
        import trl

        info.update(transformers=transformers.__version__, peft=peft.__version__,
                    trl=trl.__version__)
    except ImportError:
        pass
    return info


def model_label(args) -> str:
    return f"random-init {args.model_shape}" if args.model_shape else args.model


# ----------------------------------------------------------------------------- output

def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """Markdown table; ``columns`` = (key, header, format spec)."""
    print("| " + " | ".join(h for _, h, _ in columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        cells = []
        for key, _, spec in columns:
            value = row.get(key)
            cells.append("n/a" if value is None else format(value, spec))
        print("| " + " | ".join(cells) + " |")


def write_json(path: Path | None, payload: dict) -> None:
    if path is None:
        return
    from a3duck.files import atomic_write_text

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(path), json.dumps(payload, indent=2) + "\n")


def median(values: list[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
