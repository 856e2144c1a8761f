"""Helpers of the training tests: a tiny-Llama TrainConfig, the trainer a3duck builds for it
(without running it), and per-token losses of one row."""

from __future__ import annotations

from pathlib import Path

import torch

from a3duck import models
from a3duck.config import TrainConfig


def tiny_config(tiny_llama_dir, data_file, out, **kw):
    base = dict(base_model=str(tiny_llama_dir), data=str(data_file), output_dir=str(out),
                learning_rate=5e-2, warmup_steps=0, batch_size=4, micro_batch_size=2,
                max_steps=8, cutoff_len=128, save_steps=4, precision="fp32", device="cpu",
                lr_scheduler="constant", add_eos_token=True)
    base.update(kw)
    return TrainConfig(**base)


def build_trainer(config):
    from a3duck import dataset as D
    from a3duck.train import _build_model, _build_trainer

    tok = models.load_tokenizer(config.base_model)
    ds, _, _ = D.prepare_dataset(config, tok)
    model = _build_model(config, config.base_model)
    return _build_trainer(config, model, tok, ds, Path(config.output_dir) / "ck"), tok


def per_token_losses(model, input_ids, labels, position_ids=None):
    logits = model(input_ids=input_ids, position_ids=position_ids, use_cache=False).logits
    loss = torch.nn.functional.cross_entropy(
        logits[0, :-1], labels[0, 1:], reduction="none", ignore_index=-100)
    return loss[labels[0, 1:] != -100]
