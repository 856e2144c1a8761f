"""Base resolution, IA3 identity at init, adapter/base mismatch, merge equality."""

import pytest
import torch

from a3duck import models


def test_untrained_ia3_returns_base_logits_exactly(tiny_llama_dir):
    base, _ = models.load_base(str(tiny_llama_dir), dtype=torch.float32)
    ids = torch.tensor([[1, 50, 60, 70, 80, 90]])
    with torch.no_grad():
        ref = base(ids).logits.clone()
        peft_model = models.attach_ia3(base)
        got = peft_model(ids).logits
    assert torch.equal(ref, got)
    trainable, total = models.count_parameters(peft_model)
    # 2 layers x (k 32 + v 32 + down_proj in 128) = 384 IA3 scales
    assert trainable == 384 and total > 100_000


def test_unknown_hub_id_offline_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelError, match="cannot load base model 'nobody/no-such-model'"):
        models.resolve_base_model("nobody/no-such-model")
    with pytest.raises(models.ModelError, match="base model folder not found: ./missing"):
        models.resolve_base_model("./missing")


def test_adapter_for_another_base_is_refused(tmp_path, tiny_llama_dir):
    from transformers import LlamaConfig, LlamaForCausalLM

    other = LlamaForCausalLM(LlamaConfig(vocab_size=400, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=4,
                                         num_key_value_heads=2))
    models.attach_ia3(other).save_pretrained(tmp_path / "adapter")
    with pytest.raises(models.AdapterMismatchError, match="does not fit base model"):
        models.load(str(tiny_llama_dir), str(tmp_path / "adapter"))
