"""The original Platypus training path, reproduced to measure a3duck against (IA3 for LoRA).

Source: Platypus' ``finetune.py`` (github.com/arielnlee/Platypus, commit 0a674dd), itself
alpaca-lora's ``finetune.py`` (github.com/tloen/alpaca-lora) with Platypus' changes. Line numbers
below are that Platypus file's. What is kept, as written there:

- tokenizer: ``pad_token_id = 0`` (unk), ``padding_side = "right"`` (L160-161);
- ``tokenize``: truncate to ``cutoff_len``, append EOS when it is not there and the text is
  shorter than the cutoff, labels = a copy of the ids (L163-181). The full prompt is always
  tokenized with the default ``add_eos_token=True`` (L189), so every example ends with EOS;
- ``generate_and_tokenize_prompt``: prompt and answer rendered and tokenized *together* with the
  Alpaca template, the prompt's tokens masked with -100 (``train_on_inputs=False``, L183-207);
- ``transformers.Trainer`` with ``TrainingArguments`` (L267-292): ``per_device_train_batch_size =
  micro_batch_size``, ``gradient_accumulation_steps = batch_size // micro_batch_size`` (L122),
  ``logging_steps=1``, ``optim="adamw_torch_fused"``, ``save_steps=200``, ``save_total_limit=2``,
  ``group_by_length=False``; ``DataCollatorForSeq2Seq(tokenizer, pad_to_multiple_of=8,
  return_tensors="pt", padding=True)`` (L293-295); ``model.config.use_cache = False`` (L298);
- the model's own forward and loss: logits over the whole vocabulary at every position, the
  cross-entropy of ``LlamaForCausalLM`` (``Trainer.compute_loss``).

What differs, and why:

- IA3 (PEFT's ``IA3Config(task_type="CAUSAL_LM")``, its Llama defaults) in place of
  ``LoraConfig(r=16, ...)`` (L211-219): the one change A3Duck made;
- precision: the original loads the base in 8-bit with fp16 autocast (L146-151, L277) on a GPU.
  Here: fp32 on a CPU (no fp16/int8 training there), bf16 weights and bf16 autocast on a GPU
  (``precision`` picks); no ``prepare_model_for_int8_training`` (L209), as nothing is 8-bit;
- ``torch.compile(model)`` after the Trainer is built (L300-301) is left out: the Trainer keeps
  the uncompiled module, so in the original it never ran during training;
- the micro-batch defaults to 1 (the A3Duck recipe's), the scheduler and learning rate are
  parameters (the bench gives both paths the same), nothing is logged to wandb, and the
  dataset is not shuffled before tokenizing (L259 shuffles without a seed; Trainer's sampler
  shuffles again, seeded), so runs are repeatable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from a3duck.prompts import ALPACA  # alpaca-lora's templates/alpaca.json verbatim


def generate_prompt(instruction: str, input: str | None = None, label: str | None = None) -> str:
    """alpaca-lora's ``Prompter.generate_prompt`` (utils/prompter.py) for the alpaca template."""
    res = ALPACA.render(instruction, input)
    return f"{res}{label}" if label else res


def tokenizer_for(tokenizer):
    tokenizer.pad_token_id = 0  # L160: "unk. we want this to be different from the eos token"
    tokenizer.padding_side = "right"  # L161
    return tokenizer


def tokenize_row(tokenizer, row: dict, cutoff_len: int, add_eos_token: bool = False,
                 train_on_inputs: bool = False) -> dict:
    """L163-207: the full prompt with EOS, the user prompt's tokens masked in the labels."""
    def tokenize(prompt, add_eos_token=True):
        result = tokenizer(prompt, truncation=True, max_length=cutoff_len, padding=False,
                           return_tensors=None)
        if (result["input_ids"][-1] != tokenizer.eos_token_id
                and len(result["input_ids"]) < cutoff_len and add_eos_token):
            result["input_ids"].append(tokenizer.eos_token_id)
            result["attention_mask"].append(1)
        result["labels"] = result["input_ids"].copy()
        return result

    full = tokenize(generate_prompt(row["instruction"], row.get("input"), row["output"]))
    if not train_on_inputs:
        user = tokenize(generate_prompt(row["instruction"], row.get("input")),
                        add_eos_token=add_eos_token)
        user_len = len(user["input_ids"]) - (1 if add_eos_token else 0)
        full["labels"] = [-100] * user_len + full["labels"][user_len:]
    return full


def attach_ia3(model):
    """L211-219 with IA3: PEFT's IA3Config and its per-architecture defaults."""
    from peft import IA3Config, get_peft_model

    return get_peft_model(model, IA3Config(task_type="CAUSAL_LM"))


def build_trainer(model, tokenizer, train_data, output_dir: str, *, batch_size: int,
                  micro_batch_size: int = 1, num_epochs: float = 1, learning_rate: float = 4e-4,
                  lr_scheduler: str = "linear", warmup_ratio: float = 0.06, max_steps: int = -1,
                  bf16: bool = False, use_cpu: bool = True):
    """L267-298: transformers.Trainer, TrainingArguments and DataCollatorForSeq2Seq as written."""
    import transformers

    trainer = transformers.Trainer(
        model=model, train_dataset=train_data,
        args=transformers.TrainingArguments(
            per_device_train_batch_size=micro_batch_size,
            gradient_accumulation_steps=batch_size // micro_batch_size,
            warmup_steps=warmup_ratio,  # transformers 5: a float < 1 is the ratio (L274)
            num_train_epochs=num_epochs, max_steps=max_steps,
            learning_rate=learning_rate, bf16=bf16, logging_steps=1,
            optim="adamw_torch_fused", eval_strategy="no", save_strategy="steps",
            save_steps=200, lr_scheduler_type=lr_scheduler, output_dir=output_dir,
            save_total_limit=2, train_sampling_strategy="random",  # group_by_length=False
            report_to="none", use_cpu=use_cpu,
            include_num_input_tokens_seen="non_padding", disable_tqdm=True,
        ),
        data_collator=transformers.DataCollatorForSeq2Seq(
            tokenizer, pad_to_multiple_of=8, return_tensors="pt", padding=True),
    )
    model.config.use_cache = False  # L298
    return trainer


def load_rows(path: str) -> list[dict]:
    """Alpaca-schema rows of a JSON/JSONL file (``load_dataset("json", ...)``, L221-222)."""
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def train(base_model: str, data_path: str, output_dir: str, batch_size: int = 16,
          micro_batch_size: int = 1, num_epochs: float = 1, learning_rate: float = 4e-4,
          cutoff_len: int = 4096, precision: str = "fp32") -> dict:
    """The whole script: load, tokenize, train, save the adapter. Returns the Trainer's metrics."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
    tokenizer = tokenizer_for(AutoTokenizer.from_pretrained(base_model))
    model = attach_ia3(model)
    model.print_trainable_parameters()
    rows = [tokenize_row(tokenizer, r, cutoff_len) for r in load_rows(data_path)]
    data = datasets.Dataset.from_list(rows)
    trainer = build_trainer(model, tokenizer, data, output_dir, batch_size=batch_size,
                            micro_batch_size=micro_batch_size, num_epochs=num_epochs,
                            learning_rate=learning_rate, bf16=precision == "bf16",
                            use_cpu=not torch.cuda.is_available())
    result = trainer.train()
    model.save_pretrained(output_dir)
    return result.metrics


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-model", required=True)
    p.add_argument("--data-path", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--micro-batch-size", type=int, default=1)
    p.add_argument("--num-epochs", type=float, default=1)
    p.add_argument("--learning-rate", type=float, default=4e-4)
    p.add_argument("--cutoff-len", type=int, default=4096)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    a = p.parse_args()
    print(json.dumps(train(a.base_model, a.data_path, a.output_dir, a.batch_size,
                           a.micro_batch_size, a.num_epochs, a.learning_rate, a.cutoff_len,
                           a.precision), indent=2))
