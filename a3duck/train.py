"""Training (behind `a3duck train`): IA3 fine-tuning with TRL's SFTTrainer, resumable, with atomic artifacts.

Flow: resolve config -> tokenizer -> data (validated before any model work) -> base model + IA3 ->
SFTTrainer (prompt/completion rows pre-tokenised by a3duck.data, loss on the answer only) ->
OUTPUT_DIR/adapter/ written to a temporary folder and renamed into place.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from a3duck import adapter_folder as af
from a3duck import checkpoints as checkpoints_mod
from a3duck import dataset as dataset_mod
from a3duck import dpo, fastpath, models, preference
from a3duck.config import ConfigError, TrainConfig, read_recipe, save_config
from a3duck.errors import TrainingError
from a3duck.files import replacing_folder
from a3duck.model_checks import check_model_settings
from a3duck.outputs import check_output, output_lock
from a3duck.prompts import AUTO_NAME

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
PREFERENCE_METRICS = ("rewards/", "logps/")  # TRL's DPO metric names, kept per logging step


# ----------------------------------------------------------------------------- training

def train(config: TrainConfig, resume: bool = False) -> Path:
    """Train an IA3 adapter; return the final adapter folder (OUTPUT_DIR/adapter). The output
    folder is locked for the whole run (:func:`a3duck.outputs.output_lock`)."""
    check_output_dir(Path(config.output_dir))
    with output_lock(config.output_dir):
        return _train(config, resume)


def _train(config: TrainConfig, resume: bool) -> Path:
    from transformers import set_seed

    set_seed(config.seed)
    out = Path(config.output_dir)
    config = dpo.resolve(config)  # init adapter's sha256, DPO's reference (recorded)
    checkpoints = preflight(config, resume)
    quant = models.quantization_kwargs(config.quantization)  # fails early on a CPU-only host
    base_path = models.resolve_base_model(config.base_model)
    check_model_settings(config, base_path)  # from config.json alone: before data and weights
    tokenizer = models.load_tokenizer(base_path)
    prepare = dataset_mod.prepare_stream if config.streaming else dataset_mod.prepare_dataset
    prepare = preference.prepare if config.method == "dpo" else prepare
    dataset, report, template = prepare(config, tokenizer)
    config = config.replace(prompt_template=template)  # what the adapter records: never auto
    if not config.streaming:  # a stream is counted while it is read (the report at the end)
        log.info("data (%s template): %s", template, report.summary())
    plan = fastpath.plan(config)
    fastpath.log_plan(plan)
    model = _build_model(config, base_path, quant, plan)
    trainer = _build_trainer(config, model, tokenizer, dataset, checkpoints, plan)
    metrics = MetricsCallback()
    trainer.add_callback(metrics)
    if trainer.pop_callback(ProgressCallback) is not None:  # same bar, without its raw dicts
        trainer.add_callback(QuietProgress)
    if trainer.is_world_process_zero():  # what the checkpoints mean, checked by --resume
        save_config(config, checkpoints / af.TRAIN_CONFIG)
    started = time.perf_counter()
    with checkpoints_mod.no_torn_checkpoint(checkpoints):
        trainer.train(resume_from_checkpoint=checkpoints_mod.last_complete(checkpoints)
                      if resume else None)
    wall = time.perf_counter() - started
    summary = {**metrics.summary(trainer.state, wall, _peak_memory_bytes()),
               "fast_path": plan.to_dict(), "lineage": dpo.lineage(config)}
    log.info("trained %d steps, %d tokens, %.0f tokens/s, final loss %.4f",
             summary["steps"], summary["train_tokens"], summary["train_tokens_per_second"],
             summary["final_loss"])
    if not trainer.is_world_process_zero():  # artifacts are written once, by the main process
        return out / "adapter"
    dpo.drop_reference(model)  # only the trained adapter ships
    return write_adapter(out / "adapter", model, tokenizer, config, summary, report.to_dict())


def preflight(config: TrainConfig, resume: bool) -> Path:
    """What can be checked before loading anything (the output folder was checked by
    :func:`train` before taking its lock): the device exists, and a resumed run means what its checkpoints mean. Returns the checkpoint folder."""
    out = Path(config.output_dir)
    models.check_device(config.device)
    checkpoints = checkpoints_mod.check_fresh(out / CHECKPOINTS, resume)
    if resume and checkpoints_mod.has_any(checkpoints):
        check_resume_config(checkpoints, config)
    return checkpoints


def check_output_dir(out: Path) -> None:
    """ConfigError if ``out`` (or what it would be created in, or its adapter/checkpoint
    folders) is a file or not writable."""
    for path in (out, out / "adapter", out / CHECKPOINTS):
        check_output(path, "output_dir", flag="--output-dir")


# Settings a resumed run may change without changing what its checkpoints mean; the length of
# the run may change too (with a message), as long as steps are left to train. The fast-path
# kernels (attention, compile, loss) compute the same values, so they may change too.
RESUME_MAY_CHANGE = frozenset({"output_dir", "save_steps", "save_total_limit", "logging_steps",
                               "device", "gradient_checkpointing", "attn_implementation",
                               "compile", "loss"})
RUN_LENGTH = ("max_steps", "num_epochs")


def check_resume_config(checkpoints: Path, config: TrainConfig) -> None:
    """Refuse --resume with settings other than those the checkpoints were made with; a new
    run length is said (the learning-rate schedule follows it) or refused if nothing is left."""
    recorded_file = checkpoints / af.TRAIN_CONFIG
    if not recorded_file.is_file():
        log.warning("--resume: %s has no record of its settings; cannot check that they match",
                    checkpoints)
        return
    recorded, now = read_recipe(recorded_file), config.to_dict()
    if now["prompt_template"] == AUTO_NAME:  # recorded resolved; same data + tokenizer, same pick
        now["prompt_template"] = recorded.get("prompt_template", AUTO_NAME)
    changed = {k: f"{k} {recorded[k]!r} -> {now[k]!r}" for k in now
               if k in recorded and k not in RESUME_MAY_CHANGE and recorded[k] != now[k]}
    length = [changed.pop(k) for k in RUN_LENGTH if k in changed]
    if changed:
        raise ConfigError(
            f"--resume: the checkpoints in {checkpoints} were made with other settings "
            f"({'; '.join(changed.values())}); resume with the checkpoint's values, or choose "
            "another --output-dir to start a new run")
    step = max((int(p.name.split("-")[-1]) for p in checkpoints.glob("checkpoint-*")
                if p.name.split("-")[-1].isdigit()), default=0)
    if length and 0 < config.max_steps <= step:
        raise ConfigError(f"--resume: the newest checkpoint is at step {step}; max_steps "
                          f"{config.max_steps} leaves nothing to train: pass a larger --max-steps")
    if length:
        log.warning("--resume with a new run length (%s): continuing from step %d; the "
                    "learning-rate schedule follows the new length", "; ".join(length), step)


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
    peft_model = dpo.attach(model, config)  # fresh IA3, or the init adapter (trainable)
    # Record the portable Hub id, never the local folder the weights came from.
    af.record_base(peft_model, models.hub_id_for(config.base_model, base_path))
    trainable, total = models.count_parameters(peft_model)
    log.info("IA3: %d trainable of %d parameters (%.4f%%)", trainable, total,
             100 * trainable / total)
    return peft_model


def _on_cpu(device: str) -> bool:
    """Training runs on the CPU: asked for, or ``auto`` with no CUDA or MPS device."""
    import torch

    return device == "cpu" or (device == "auto" and not torch.cuda.is_available()
                               and not torch.backends.mps.is_available())


def _build_trainer(config: TrainConfig, model, tokenizer, dataset, checkpoints: Path,
                   plan: fastpath.Plan | None = None):
    from trl import SFTConfig

    plan = plan or fastpath.plan(config)
    common = _common_args(config, checkpoints, plan)
    if config.method == "dpo":
        return dpo.build_trainer(config, model, tokenizer, dataset, common)
    args = SFTConfig(
        **common, max_length=config.cutoff_len, packing=config.packing,
        padding_free=config.packing, completion_only_loss=not config.train_on_inputs,
        include_num_input_tokens_seen="all" if config.packing else "non_padding")
    return fastpath.trainer_class(plan.loss)(model=model, args=args, train_dataset=dataset,
                                             processing_class=tokenizer)


def _common_args(config: TrainConfig, checkpoints: Path, plan: fastpath.Plan) -> dict:
    """The Trainer arguments SFT and DPO share (the published recipe's optimisation)."""
    import torch

    return {
        "output_dir": str(checkpoints), "seed": config.seed, "data_seed": config.seed,
        "per_device_train_batch_size": config.micro_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "learning_rate": config.learning_rate, "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup_steps, "weight_decay": config.weight_decay,
        "num_train_epochs": config.num_epochs, "max_steps": config.max_steps,
        "max_grad_norm": config.max_grad_norm, "bf16": plan.dtype == torch.bfloat16,
        "torch_compile": plan.compile,
        "activation_checkpointing": config.gradient_checkpointing,
        "logging_steps": config.logging_steps, "save_strategy": "steps", "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit, "report_to": "none",
        "disable_tqdm": False,  # a3duck always shows the training bar (quiet logs would hide it)
        "use_cpu": _on_cpu(config.device),  # also for auto on a CPU-only host (bf16 needs it)
        "train_sampling_strategy": "group_by_length" if config.group_by_length else "random",
        "dataloader_num_workers": 0,
    }


def _peak_memory_bytes() -> int:
    """Peak accelerator memory if on CUDA, else the process's peak resident set size."""
    import resource

    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB


# ----------------------------------------------------------------------------- callbacks

class QuietProgress(ProgressCallback):
    """transformers' training bar without the metrics dict it writes under the bar at every
    logging step: MetricsCallback already logs one readable line per step."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return None


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
        # DPO's metrics keep TRL's names (rewards/margins, logps/chosen, ...).
        preference_metrics = {k: float(v) for k, v in logs.items()
                              if k.startswith(PREFERENCE_METRICS)}
        self.loss_history.append({"step": state.global_step, "loss": loss, **preference_metrics})
        if not state.is_world_process_zero:
            return
        rate = state.num_input_tokens_seen / max(time.perf_counter() - self._t0, 1e-9)
        margin = ("" if "rewards/margins" not in logs else
                  f" margin {logs['rewards/margins']:.4f} accuracy "
                  f"{logs.get('rewards/accuracies', float('nan')):.2f}")
        log.info("step %d/%d loss %.4f%s lr %.3g tokens/s %.0f", state.global_step,
                 state.max_steps, loss, margin, float(logs.get("learning_rate", 0.0)), rate)

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
    from peft import get_peft_model_state_dict

    from a3duck.limits import require_finite

    require_finite(get_peft_model_state_dict(model), target, writing=True)
    with replacing_folder(target) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        save_config(config, tmp / af.TRAIN_CONFIG)
        af.write_run_records(tmp, metrics, data_report)
    log.info("adapter written to %s", target)
    return target
