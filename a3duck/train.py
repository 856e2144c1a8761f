"""`a3duck train`: IA3 fine-tuning with TRL's SFTTrainer, resumable, with atomic artifacts.

Flow: resolve config -> tokenizer -> data (validated before any model work) -> base model + IA3 ->
SFTTrainer (prompt/completion rows pre-tokenised by a3duck.data, loss on the answer only) ->
OUTPUT_DIR/adapter/ written to a temporary folder and renamed into place.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback

from a3duck import data as data_mod
from a3duck import fastpath, models
from a3duck.config import CONFIG_FILENAME, ConfigError, TrainConfig, load_config, save_config
from a3duck.errors import TrainingError

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
METRICS_FILE = "train_metrics.json"
DATA_REPORT_FILE = "data_report.json"




# ----------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", help="YAML recipe of TrainConfig fields (defaults: the "
                        "published A3Duck recipe), e.g. recipes/smollm2-demo.yaml")
    parser.add_argument("--base-model", help="Hub id or local folder of the base model")
    parser.add_argument("--data", help="training data: .json/.jsonl/.parquet/.csv file or Hub id")
    parser.add_argument("--output-dir", help="run folder; the adapter goes to OUTPUT_DIR/adapter/")
    parser.add_argument("--max-steps", type=int, help="stop after N optimizer steps (-1: epochs)")
    parser.add_argument("--num-epochs", type=float, help="passes over the data")
    parser.add_argument("--learning-rate", type=float, help="peak learning rate (IA3 often wants "
                        "~10x the LoRA-tuned 4e-4)")
    parser.add_argument("--batch-size", type=int, help="examples (or packed rows) per optimizer step")
    parser.add_argument("--micro-batch-size", type=int, help="examples per forward pass")
    parser.add_argument("--cutoff-len", type=int, help="maximum tokens per example")
    parser.add_argument("--save-steps", type=int, help="checkpoint every N optimizer steps")
    parser.add_argument("--packing", action=argparse.BooleanOptionalAction, default=None,
                        help="padding-free packing of several examples per row (exact per token)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in OUTPUT_DIR/checkpoints")
    parser.add_argument("--skip-bad-rows", action="store_true", default=None,
                        help="drop invalid rows (reported with their numbers) instead of stopping")
    parser.add_argument("--device", help="'cpu' to force the CPU; default picks the accelerator")
    quant = parser.add_mutually_exclusive_group()
    quant.add_argument("--load-in-4bit", dest="quantization", action="store_const", const="4bit",
                       help="load the frozen base in 4-bit NF4 (bitsandbytes, CUDA only)")
    quant.add_argument("--load-in-8bit", dest="quantization", action="store_const", const="8bit",
                       help="load the frozen base in 8-bit (bitsandbytes, CUDA only)")


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Recipe (or defaults) with command-line overrides applied."""
    config = load_config(args.recipe) if args.recipe else TrainConfig()
    return config.replace(
        base_model=args.base_model, data=args.data, output_dir=args.output_dir,
        max_steps=args.max_steps, num_epochs=args.num_epochs, learning_rate=args.learning_rate,
        batch_size=args.batch_size, micro_batch_size=args.micro_batch_size,
        cutoff_len=args.cutoff_len, save_steps=args.save_steps, packing=args.packing,
        skip_bad_rows=args.skip_bad_rows, device=args.device, quantization=args.quantization,
    )


def run(args: argparse.Namespace) -> int:
    adapter_dir = train(resolve_config(args), resume=args.resume)
    print(adapter_dir)
    return 0


# ----------------------------------------------------------------------------- training

def train(config: TrainConfig, resume: bool = False) -> Path:
    """Train an IA3 adapter; return the final adapter folder (OUTPUT_DIR/adapter)."""
    from transformers import set_seed

    set_seed(config.seed)
    out = Path(config.output_dir)
    checkpoints = _check_checkpoints(out / CHECKPOINTS, resume)
    quant = models.quantization_kwargs(config.quantization)  # fails early on a CPU-only host
    base_path = models.resolve_base_model(config.base_model)
    tokenizer = models.load_tokenizer(base_path)
    dataset, report = data_mod.prepare_dataset(config, tokenizer)
    log.info("data: %s", report.summary())
    plan = fastpath.plan(config)
    fastpath.log_plan(plan)
    model = _build_model(config, base_path, quant, plan)
    trainer = _build_trainer(config, model, tokenizer, dataset, checkpoints, plan)
    metrics = MetricsCallback()
    trainer.add_callback(metrics)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=_last_complete_checkpoint(checkpoints) if resume else None)
    wall = time.perf_counter() - started
    summary = {**metrics.summary(trainer.state, wall, _peak_memory_bytes()),
               "fast_path": plan.to_dict()}
    log.info("trained %d steps, %d tokens, %.0f tokens/s, final loss %.4f",
             summary["steps"], summary["train_tokens"], summary["train_tokens_per_second"],
             summary["final_loss"])
    if not trainer.is_world_process_zero():  # artifacts are written once, by the main process
        return out / "adapter"
    return write_adapter(out / "adapter", model, tokenizer, config, summary, report.to_dict())


def _check_checkpoints(checkpoints: Path, resume: bool) -> Path:
    """Refuse to silently restart over an earlier run's checkpoints (alpaca-lora's failure)."""
    if _has_checkpoint(checkpoints) and not resume:
        raise ConfigError(
            f"{checkpoints} holds checkpoints of an earlier run: pass --resume to continue it, "
            "or choose another --output-dir (or delete that folder) to start over"
        )
    if resume and not _has_checkpoint(checkpoints):
        log.info("--resume: no checkpoint in %s yet, starting from step 0", checkpoints)
    return checkpoints


def _has_checkpoint(folder: Path) -> bool:
    return folder.is_dir() and any(p.name.startswith("checkpoint-") for p in folder.iterdir())


# A checkpoint interrupted while being written lacks some of these; resume skips it.
CHECKPOINT_FILES = ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt",
                    "trainer_state.json")


def _last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint folder holding every file a resume needs, or None."""
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*")
            if p.name.split("-")[-1].isdigit() and all((p / f).is_file() for f in CHECKPOINT_FILES)]
    if not done:
        return None
    last = max(done, key=lambda p: int(p.name.split("-")[-1]))
    log.info("resuming from %s", last)
    return str(last)


def _build_model(config: TrainConfig, base_path: str, quant: dict | None = None,
                 plan: fastpath.Plan | None = None):
    quant = quant or {}
    plan = plan or fastpath.plan(config)
    model, _ = models.load_base(
        base_path, dtype=plan.dtype, device="cpu" if config.device == "cpu" else None, **quant,
    )
    fastpath.set_attention(model, plan.attn_implementation)
    if quant:  # frozen 4/8-bit base: PEFT's preparation (fp32 norms, input grads)
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.gradient_checkpointing)
    # Packed rows are only isolated from each other without a KV cache (mask from position_ids).
    model.config.use_cache = False
    peft_model = models.attach_ia3(model, config.target_modules, config.feedforward_modules)
    # Record the portable Hub id, never the local folder the weights came from.
    peft_model.peft_config["default"].base_model_name_or_path = models.hub_id_for(
        config.base_model, base_path)
    trainable, total = models.count_parameters(peft_model)
    log.info("IA3: %d trainable of %d parameters (%.4f%%)", trainable, total,
             100 * trainable / total)
    return peft_model


def _build_trainer(config: TrainConfig, model, tokenizer, dataset, checkpoints: Path,
                   plan: fastpath.Plan | None = None):
    import torch
    from trl import SFTConfig

    plan = plan or fastpath.plan(config)
    args = SFTConfig(
        output_dir=str(checkpoints), seed=config.seed, data_seed=config.seed,
        per_device_train_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate, lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
        num_train_epochs=config.num_epochs, max_steps=config.max_steps,
        max_grad_norm=config.max_grad_norm, bf16=plan.dtype == torch.bfloat16,
        torch_compile=plan.compile,
        activation_checkpointing=config.gradient_checkpointing,
        logging_steps=config.logging_steps, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=config.save_total_limit, report_to="none",
        use_cpu=config.device == "cpu",
        max_length=config.cutoff_len, packing=config.packing, padding_free=config.packing,
        completion_only_loss=not config.train_on_inputs,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        include_num_input_tokens_seen="all" if config.packing else "non_padding",
        dataloader_num_workers=0,
    )
    return fastpath.trainer_class(plan.loss)(model=model, args=args, train_dataset=dataset,
                                             processing_class=tokenizer)


def _peak_memory_bytes() -> int:
    """Peak accelerator memory if on CUDA, else the process's peak resident set size."""
    import resource

    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB


# ----------------------------------------------------------------------------- callbacks

class MetricsCallback(TrainerCallback):
    """Collects the loss curve, stops on a non-finite loss, logs one line per logging step."""

    def __init__(self) -> None:
        self.loss_history: list[dict[str, float]] = []
        self._t0 = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            raise TrainingError(
                f"loss became {loss} at step {state.global_step}: lower --learning-rate, use bf16 "
                "or fp32 rather than fp16, or check the data; the last checkpoint is intact "
                "(--resume continues from it)"
            )
        self.loss_history.append({"step": state.global_step, "loss": loss})
        if not state.is_world_process_zero:
            return
        rate = state.num_input_tokens_seen / max(time.perf_counter() - self._t0, 1e-9)
        log.info("step %d/%d loss %.4f lr %.3g tokens/s %.0f", state.global_step, state.max_steps,
                 loss, float(logs.get("learning_rate", 0.0)), rate)

    def summary(self, state, wall_seconds: float, peak_memory: int) -> dict:
        tokens = int(state.num_input_tokens_seen)
        return {
            "steps": int(state.global_step),
            "train_tokens": tokens,
            "train_tokens_per_second": tokens / wall_seconds if wall_seconds else 0.0,
            "wall_seconds": wall_seconds,
            "peak_memory_bytes": peak_memory,
            "loss_history": self.loss_history,
            "final_loss": self.loss_history[-1]["loss"] if self.loss_history else float("nan"),
            "epochs": float(state.epoch or 0.0),
        }


# ----------------------------------------------------------------------------- artifacts

def write_adapter(target: Path, model, tokenizer, config: TrainConfig, metrics: dict,
                  data_report: dict) -> Path:
    """Write every artifact into a temporary sibling folder, then swap it into ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    tmp.chmod(0o755)  # mkdtemp creates 0700; the adapter folder is meant to be shared
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        save_config(config, tmp / CONFIG_FILENAME)
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        (tmp / DATA_REPORT_FILE).write_text(json.dumps(data_report, indent=2), encoding="utf-8")
        _swap_into_place(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("adapter written to %s", target)
    return target


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; an existing target is moved aside first, removed after."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{time.time_ns()}")
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
