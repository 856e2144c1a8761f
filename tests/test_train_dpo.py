"""method: dpo on the tiny SentencePiece Llama: the reference after SFT, metrics, artifacts."""

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from conftest import repeat_rows, write_jsonl

from a3duck import adapter_folder as af
from a3duck import dpo, models, preference
from a3duck.config import TrainConfig
from a3duck.train import train

PAIRS = [{"prompt": f"Question {i}: what is the capital of France?",
          "chosen": "Paris is the capital of France.",
          "rejected": f"The quick brown fox {i} jumps over the lazy dog."} for i in range(8)]


def tiny(tiny_llama_dir, data, out, **kw):
    base = {"base_model": str(tiny_llama_dir), "data": str(data), "output_dir": str(out),
                "learning_rate": 5e-2, "warmup_steps": 0, "batch_size": 4, "micro_batch_size": 2,
                "max_steps": 2, "cutoff_len": 128, "save_steps": 50, "precision": "fp32", "device": "cpu",
                "lr_scheduler": "constant", "add_eos_token": True}
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def sft_adapter(tiny_llama_dir, tmp_path_factory):
    """A trained IA3 SFT adapter (its vectors moved away from 1.0)."""
    work = tmp_path_factory.mktemp("sft")
    data = write_jsonl(work / "sft.jsonl", repeat_rows(16))
    return train(tiny(tiny_llama_dir, data, work / "out", max_steps=4, learning_rate=0.2))


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("pairs") / "pairs.jsonl", PAIRS)


def dpo_trainer(config):
    from a3duck.train import _build_model, _build_trainer

    config = dpo.resolve(config)
    tok = models.load_tokenizer(config.base_model)
    ds, _, _ = preference.prepare(config, tok)
    model = _build_model(config, config.base_model)
    return _build_trainer(config, model, tok, ds, Path(config.output_dir) / "ck"), tok


def test_trl_alone_gets_the_ia3_reference_wrong(sft_adapter, tiny_llama_dir, pairs_file, tmp_path):
    """The defect a3duck works around: TRL's "ref" copy of an IA3 SFT adapter stays at 1.0."""
    from peft import PeftModel
    from trl import DPOConfig

    model, _ = models.load_base(str(tiny_llama_dir), dtype=torch.float32, device="cpu")
    model = PeftModel.from_pretrained(model, str(sft_adapter), is_trainable=True)
    config = tiny(tiny_llama_dir, pairs_file, tmp_path, method="dpo")
    tok = models.load_tokenizer(str(tiny_llama_dir))
    ds, _, _ = preference.prepare(config, tok)
    dpo.trainer_class()(model=model, args=DPOConfig(output_dir=str(tmp_path / "ck"),
                                                      report_to="none", use_cpu=True),
                        train_dataset=ds, processing_class=tok)
    ref = [p for n, p in model.named_parameters() if n.endswith(".ref")]
    default = [p for n, p in model.named_parameters() if n.endswith(".default")]
    assert ref and all(torch.equal(p, torch.ones_like(p)) for p in ref)
    assert any(not torch.equal(p, torch.ones_like(p)) for p in default)


def test_first_step_from_sft_adapter_is_policy_equals_reference(sft_adapter, tiny_llama_dir,
                                                                 pairs_file, tmp_path):
    config = tiny(tiny_llama_dir, pairs_file, tmp_path, method="dpo",
                  init_adapter=str(sft_adapter), max_steps=2, learning_rate=0.1)
    adapter = train(config)
    history = json.loads((adapter / "train_metrics.json").read_text())["loss_history"]
    first = history[0]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-5)  # fp32
    assert first["rewards/margins"] == pytest.approx(0.0, abs=1e-5)
    assert first["rewards/chosen"] == pytest.approx(0.0, abs=1e-5)
    for key in ("rewards/rejected", "rewards/accuracies", "logps/chosen", "logps/rejected"):
        assert all(key in entry for entry in history)
    assert history[1]["rewards/margins"] > 0  # the second step learnt from the first
    metrics = json.loads((adapter / "train_metrics.json").read_text())
    assert metrics["lineage"] == ("SFT on sft.jsonl → DPO on pairs.jsonl (reference: a frozen "
                                  "copy of the init adapter, beta 0.1)")
    assert metrics["train_tokens"] > 0
    from a3duck.publish.card import card_context

    assert card_context(adapter, "a/b", None, None)["lineage"] == metrics["lineage"]
    recorded = yaml.safe_load((adapter / "a3duck_config.yaml").read_text())
    from a3duck.mix import sha256

    assert recorded["method"] == "dpo" and recorded["reference"] == "init_adapter"
    assert recorded["init_adapter"] == str(sft_adapter)
    assert recorded["init_adapter_sha256"] == sha256(sft_adapter / af.ADAPTER_WEIGHTS)
    assert recorded["packing"] is False
    # Plain PEFT loads it, as an IA3 adapter, and only the trained adapter shipped.
    from peft import AutoPeftModelForCausalLM, IA3Config

    loaded = AutoPeftModelForCausalLM.from_pretrained(str(adapter))
    assert isinstance(loaded.peft_config["default"], IA3Config)
    assert list(loaded.peft_config) == ["default"] and not (adapter / "ref").exists()
    trained = af.tensors(adapter)
    start = af.tensors(sft_adapter)
    assert trained.keys() == start.keys()
    assert any(not torch.equal(trained[k], start[k]) for k in trained)


def _answer_logps(model, batch) -> torch.Tensor:
    """Sum of log p(answer token) per row, computed directly from the logits."""
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logps = torch.log_softmax(logits[:, :-1].float(), -1)
    picked = logps.gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
    return (picked * batch["completion_mask"][:, 1:]).sum(-1)


def test_reference_logps_are_the_sft_adapters_own(sft_adapter, tiny_llama_dir, pairs_file,
                                                  tmp_path):
    config = tiny(tiny_llama_dir, pairs_file, tmp_path, method="dpo",
                  init_adapter=str(sft_adapter))
    trainer, _ = dpo_trainer(config)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    ref_chosen, ref_rejected = trainer.compute_ref_log_probs(trainer.model, batch)
    sft, _ = models.load(str(tiny_llama_dir), str(sft_adapter), dtype=torch.float32,
                         device="cpu")
    own = _answer_logps(sft, batch)
    assert torch.allclose(torch.cat([ref_chosen, ref_rejected]), own, atol=1e-4)
    base, _ = models.load(str(tiny_llama_dir), dtype=torch.float32, device="cpu")
    assert not torch.allclose(_answer_logps(base, batch), own, atol=1e-2)  # not the base


def test_from_scratch_the_reference_is_the_base(tiny_llama_dir, pairs_file, tmp_path):
    config = dpo.resolve(tiny(tiny_llama_dir, pairs_file, tmp_path, method="dpo"))
    assert config.reference == "base"
    adapter = train(config.replace(max_steps=1))
    first = json.loads((adapter / "train_metrics.json").read_text())["loss_history"][0]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-5)


def test_reference_base_keeps_trl_ref_at_ones(sft_adapter, tiny_llama_dir, pairs_file, tmp_path):
    """Asked for explicitly, the base is the reference even after SFT (recorded as such)."""
    config = tiny(tiny_llama_dir, pairs_file, tmp_path, method="dpo",
                  init_adapter=str(sft_adapter), reference="base")
    trainer, _ = dpo_trainer(config)
    ref = [p for n, p in trainer.model.named_parameters() if n.endswith(".ref")]
    assert all(torch.equal(p, torch.ones_like(p)) for p in ref)
    assert "reference the base model" in dpo.describe(dpo.resolve(config))


def test_pinned_sha256_must_match(sft_adapter, tiny_llama_dir, pairs_file, tmp_path):
    from a3duck.errors import ConfigError

    config = tiny(tiny_llama_dir, pairs_file, tmp_path, method="dpo",
                  init_adapter=str(sft_adapter), init_adapter_sha256="0" * 64)
    with pytest.raises(ConfigError, match="pinned init_adapter_sha256"):
        dpo.resolve(config)


def test_reference_init_adapter_needs_one(tiny_llama_dir, pairs_file, tmp_path):
    from a3duck.errors import ConfigError

    with pytest.raises(ConfigError, match="reference: init_adapter needs --init-adapter"):
        tiny(tiny_llama_dir, pairs_file, tmp_path, method="dpo", reference="init_adapter")
