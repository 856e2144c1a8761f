"""The training fast path (a3duck.fastpath): machine detection, attention selection, and exactness
of every implementation and of the label-positions loss against the plain model loss."""

import json
from pathlib import Path

import pytest
import torch
from conftest import repeat_rows, write_jsonl

from a3duck import fastpath, models
from a3duck.config import ConfigError, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
X86_BF16 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n"
X86_PLAIN = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n"


def test_cpu_bf16_detection_and_precision_choice():
    assert fastpath.cpu_bf16_flags(X86_BF16) == ["avx512_bf16"]
    assert fastpath.cpu_bf16_flags(ARM_BF16) == ["bf16"]
    assert fastpath.cpu_bf16_flags(X86_PLAIN) == [] and fastpath.cpu_bf16_flags("") == []
    dtype, why = fastpath.resolve_precision("auto", "cpu", X86_BF16)
    assert dtype == torch.bfloat16 and "avx512_bf16" in why
    dtype, why = fastpath.resolve_precision("auto", "cpu", X86_PLAIN)
    assert dtype == torch.float32 and "no bf16 unit" in why
    assert fastpath.resolve_precision("fp32", "cpu", X86_BF16)[0] == torch.float32
    assert fastpath.resolve_precision("bf16", "cpu", X86_PLAIN)[0] == torch.bfloat16


def test_attention_selection_per_machine():
    has = {"flash_attn", "flash_attn_interface", "triton"}.__contains__
    assert fastpath.attention_options(None, has)[0] == "sdpa_varlen"  # CPU
    assert fastpath.attention_options((9, 0), has)[:3] == [
        "flash_attention_3", "flash_attention_2", "flex_attention"]  # H100/H200
    assert fastpath.attention_options((8, 0), has)[0] == "flash_attention_2"  # A100
    assert fastpath.attention_options((8, 0), {"triton"}.__contains__)[0] == "flex_attention"
    assert fastpath.attention_options((7, 5), set().__contains__)[0] == "sdpa"
    assert fastpath.resolve_attention("auto", "cpu", packing=True)[0] == "sdpa_varlen"
    assert fastpath.resolve_attention("auto", "cpu", packing=False)[0] == "sdpa"
    assert fastpath.resolve_attention("eager", "cpu", packing=True)[0] == "eager"
    assert fastpath.resolve_compile("auto", "cpu") == (False, fastpath.resolve_compile(
        "auto", "cpu")[1]) and fastpath.resolve_compile("always", "cpu")[0] is True
    assert fastpath.resolve_loss("auto", "cpu")[0] == "label_positions"
    with pytest.raises(ConfigError, match="attn_implementation: must be one of auto, sdpa"):
        TrainConfig(attn_implementation="flash")
    assert TrainConfig(compile=True).compile == "always"  # YAML booleans
    assert TrainConfig(compile="no").compile == "never"  # flags: --compile no
    with pytest.raises(ConfigError, match="compile: must be one of auto, always, never"):
        TrainConfig(compile="sometimes")


def test_fast_path_flags_come_from_the_config_fields(tmp_path):
    """--attn-implementation/--compile/--loss are generated from TrainConfig; a recipe may say
    ``compile: true`` (YAML boolean) and a flag overrides it."""
    import argparse
    from dataclasses import fields

    from a3duck.commands import train as command
    from a3duck.config import resolve

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert "{auto,always,never}" in parser.format_help()
    recipe = tmp_path / "r.yaml"
    recipe.write_text("compile: true\nloss: trl_fused\n", encoding="utf-8")
    args = parser.parse_args(["--recipe", str(recipe), "--attn-implementation", "sdpa_varlen"])
    config = resolve(args.recipe, {f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    assert (config.attn_implementation, config.compile, config.loss) == (
        "sdpa_varlen", "always", "trl_fused")
    args = parser.parse_args(["--recipe", str(recipe), "--compile", "never"])
    assert resolve(args.recipe, {"compile": args.compile}).compile == "never"


@pytest.fixture()
def tiny_rows(tiny_llama_dir):
    from a3duck import data as D
    from a3duck.dataset import tokenize_examples  # tokenising lives in dataset.py (issue 13)

    config = TrainConfig(base_model=str(tiny_llama_dir), data="unused", cutoff_len=128,
                         add_eos_token=True)
    tok = models.load_tokenizer(str(tiny_llama_dir))
    examples = [D.Example(prompt=D.get_template("alpaca").render(r["instruction"]),
                          completion=r["output"], row=i) for i, r in enumerate(repeat_rows(5))]
    cols = tokenize_examples(examples, tok, cutoff_len=config.cutoff_len, add_eos=True,
                             too_long="truncate", report=D.DataReport(source="x"))
    # labels as SFTTrainer folds them in from completion_mask: -100 on the prompt
    return [{"input_ids": i, "labels": [t if keep else -100 for t, keep in zip(i, m)]}
            for i, m in zip(cols["input_ids"], cols["completion_mask"])], tok


def token_losses(model, batch):
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs, use_cache=False).logits.float()
    labels = batch["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels.flatten(),
                                             reduction="none", ignore_index=-100)
    return loss[labels.flatten() != -100]


@pytest.mark.parametrize("impl", fastpath.installed_attention("cpu"))
def test_packing_exact_for_every_attention_implementation(tiny_llama_dir, tiny_rows, impl):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rows, tok = tiny_rows
    model, _ = models.load_base(str(tiny_llama_dir), dtype=torch.float32, device="cpu")
    fastpath.set_attention(model, impl)
    model.eval()
    packed = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)(rows)
    assert "cu_seq_lens_q" in packed and packed["input_ids"].shape[0] == 1
    single = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        got = token_losses(model, packed)
        ref = torch.cat([token_losses(model, single([r])) for r in rows])
        # position ids only (no cu_seq_lens): transformers' own mask path, also exact
        no_cu = {k: packed[k] for k in ("input_ids", "position_ids", "labels")}
        got_posids = token_losses(model, no_cu)
    assert got.shape == ref.shape and torch.allclose(got, ref, atol=1e-5)
    assert torch.allclose(got_posids, ref, atol=1e-5)


def test_label_positions_loss_equals_model_loss(tiny_llama_dir, tiny_rows):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rows, tok = tiny_rows
    model, _ = models.load_base(str(tiny_llama_dir), dtype=torch.float32, device="cpu")
    model.eval()
    padded = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)(rows[:3])
    packed = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)(rows)
    with torch.no_grad():
        for batch in (padded, packed):
            ours, out = fastpath.label_positions_loss(model, dict(batch))
            theirs = model(**batch, use_cache=False).loss
            count = int((batch["labels"][:, 1:] != -100).sum())
            assert out.logits.shape[1] < batch["input_ids"].shape[1]  # prompts not projected
            assert torch.allclose(ours, theirs, rtol=1e-6, atol=1e-6)
            summed, _ = fastpath.label_positions_loss(model, dict(batch), num_items_in_batch=1)
            assert torch.allclose(summed, theirs * count, rtol=1e-5)


def train_tiny(tiny_llama_dir, tmp_path, name, **kw):
    from a3duck.train import train

    data = write_jsonl(tmp_path / "train.jsonl", repeat_rows(16))
    config = TrainConfig(base_model=str(tiny_llama_dir), data=str(data),
                         output_dir=str(tmp_path / name), learning_rate=5e-2, warmup_steps=0,
                         batch_size=4, micro_batch_size=2, max_steps=4, cutoff_len=128,
                         save_steps=100, device="cpu", lr_scheduler="constant",
                         add_eos_token=True, packing=True, **kw)
    adapter = train(config)
    return json.loads((adapter / "train_metrics.json").read_text()), adapter


# bf16 vs fp32 on the same steps: stated tolerance, relative per logged loss.
BF16_LOSS_RTOL = 0.02


def test_auto_precision_follows_this_cpu_and_bf16_curve_tracks_fp32(tiny_llama_dir, tmp_path):
    from safetensors.torch import load_file

    auto, adapter = train_tiny(tiny_llama_dir, tmp_path, "auto", precision="auto")
    fp32, _ = train_tiny(tiny_llama_dir, tmp_path, "fp32", precision="fp32")
    expected = "bfloat16" if fastpath.cpu_bf16_flags() else "float32"
    assert auto["fast_path"]["precision"] == expected
    assert auto["fast_path"]["attn_implementation"] == "sdpa_varlen"
    assert auto["fast_path"]["loss"] == "label_positions"
    assert fp32["fast_path"]["precision"] == "float32"
    assert {t.dtype for t in load_file(adapter / "adapter_model.safetensors").values()} == {
        torch.float32}  # IA3 vectors stay fp32 under bf16
    a = [h["loss"] for h in auto["loss_history"]]
    b = [h["loss"] for h in fp32["loss_history"]]
    assert len(a) == len(b) == 4
    for x, y in zip(a, b):
        assert abs(x - y) <= BF16_LOSS_RTOL * abs(y), (a, b)


def test_one_dtype_rule_for_training_and_loading(monkeypatch):
    """models.pick_dtype (eval, the Space) is resolve_precision with fp32 kept on bf16 CPUs."""
    monkeypatch.setattr(fastpath, "cpu_bf16_flags", lambda cpuinfo=None: ["avx512_bf16"])
    assert fastpath.resolve_precision("auto", "cpu")[0] == torch.bfloat16  # training: autocast
    assert models.pick_dtype("auto", "cpu") == torch.float32  # weights for scores: fp32
    for precision, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        assert models.pick_dtype(precision, "cpu") == dtype
        assert fastpath.resolve_precision(precision, "cpu")[0] == dtype
