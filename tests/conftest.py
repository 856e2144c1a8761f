"""Shared fixtures: a tiny random Llama with a SentencePiece tokenizer trained at test time, the
embedded SmolLM2, and ../shared/data. Tests that need something absent skip with a reason; with
CI=true such a skip is turned into a failure (see pytest_collection / require())."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

# Fixtures of the support modules, for every test: hub (the local Hub API server).
pytest_plugins = ["hub_support"]
ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("A3DUCK_SHARED_DATA", ROOT.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# huggingface_hub reads HF_HUB_OFFLINE once, when it is first imported (test modules import it
# at collection, before any fixture runs): set it here so in-process lookups of uncached Hub
# ids fail at once instead of waiting on the network. Tests that talk to the local Hub server
# run their commands in subprocesses with their own environment.
os.environ["HF_HUB_OFFLINE"] = "1"

SP_TEXT = [
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.",
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context.",
    "### Instruction:", "### Input:", "### Response:",
    "The quick brown fox jumps over the lazy dog. 0123456789",
    "What is the capital of France? Paris is the capital of France.",
    "Answer: A B C D. Question: which of these is true?",
]


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` when ``condition`` is false; in CI that is a failure instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _hub_offline(tmp_path_factory):
    """Tests never touch the real Hub; an isolated HF cache keeps runs reproducible."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ["HF_HOME"] = str(tmp_path_factory.mktemp("hf_home"))
    yield


@pytest.fixture(scope="session")
def sp_tokenizer_dir(tmp_path_factory) -> Path:
    """A Llama SentencePiece tokenizer (BOS=1, EOS=2, UNK=0, no pad), trained now."""
    import sentencepiece as spm

    work = tmp_path_factory.mktemp("sp")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SP_TEXT * 40), model_prefix=str(work / "sp"), vocab_size=400,
        model_type="bpe", bos_id=1, eos_id=2, unk_id=0, pad_id=-1, byte_fallback=True,
        character_coverage=1.0, minloglevel=2,
    )
    out = work / "tokenizer"
    out.mkdir()
    shutil.copy(work / "sp.model", out / "tokenizer.model")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False,
    }))
    return out


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, sp_tokenizer_dir) -> Path:
    """A random 2-layer Llama (hidden 64) saved with the SentencePiece tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=400, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=1, eos_token_id=2, pad_token_id=None, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny_llama")
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(sp_tokenizer_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    """The embedded SmolLM2 folder (materialised once per A3DUCK_HOME)."""
    from a3duck import embedded

    try:
        embedded.gguf_path()
    except FileNotFoundError as exc:
        require(False, str(exc))
    return embedded.prepare()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    require(SHARED_DATA.is_dir(), f"{SHARED_DATA} (real benchmark files) is absent")
    return SHARED_DATA


def repeat_rows(n: int) -> list[dict]:
    """Small Alpaca-schema rows the tiny model can fit: 'Repeat the number i.' -> 'i i i'."""
    return [{"instruction": f"Repeat the number {i}.", "input": "", "output": f"{i} {i} {i}"}
            for i in range(n)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
