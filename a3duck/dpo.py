"""Preference tuning (``method: dpo``): TRL's DPOTrainer on IA3, with the right reference.

Reference. DPO scores the policy against a frozen reference: from scratch that is the base (IA3
vectors at 1.0 are the identity), after SFT it must be the SFT adapter. Given a PeftModel that
already carries a trained adapter, trl 1.16's DPOTrainer adds a "ref" adapter and copies into
it every parameter whose name contains ``.default.`` (trl/trainer/dpo_trainer.py, lines
689-694). IA3's parameters are named ``...k_proj.ia3_l.default`` (no trailing dot): nothing is
copied, the "ref" vectors stay at 1.0 and the reference silently becomes the base. trl 1.16 has
no setting naming the reference adapter (the name "ref" is fixed, and a "ref" adapter loaded
beforehand makes its ``add_adapter("ref")`` fail), so a3duck lets TRL create "ref" and then
loads the init adapter's weights into it with PEFT's own ``set_peft_model_state_dict``, and
checks every "ref" vector against what the reference must be before the first step
(:func:`set_reference`). The result is a frozen copy of the init adapter, used by TRL's
``use_adapter("ref")`` for every reference forward: one extra no-grad forward per step. The
alternative, ``precompute_ref_log_probs``, is not used: trl 1.16 runs that pass inside
``DPOTrainer.__init__`` through the same uncopied "ref" adapter (dpo_trainer.py, lines 1013-1017
and 1254), before anything can correct it, so it would precompute the base's log-probs.

Settings that do not apply to DPO are ignored with one line each (packing: pairs are padded per
batch; the loss fast path: TRL computes log-probs with its own fused LM head; train_on_inputs:
DPO scores the answers only).
"""

from __future__ import annotations

import logging

import torch

from a3duck import adapter_folder as af
from a3duck import models
from a3duck.errors import ConfigError, TrainingError

log = logging.getLogger(__name__)

REF_ADAPTER = "ref"  # the name trl 1.16's DPOTrainer gives its reference adapter
POLICY_ADAPTER = "default"
# TrainConfig fields with no effect under DPO, and why (logged when set away from the default).
IGNORED = {"packing": "pairs are padded per batch, never packed",
           "train_on_inputs": "DPO scores the answers only",
           "loss": "TRL computes the log-probs with its own fused LM head"}


def resolve(config):
    """``config`` with what the run records: the init adapter's sha256 (checked against a pinned
    one), the reference resolved from ``auto``, and DPO's ignored settings reset (one note each)."""
    if config.init_adapter:
        digest = af.weights_sha256(af.resolve(config.init_adapter))
        if config.init_adapter_sha256 and config.init_adapter_sha256 != digest:
            raise ConfigError(
                f"init_adapter: {config.init_adapter}'s weights have sha256 {digest}, not the "
                f"pinned init_adapter_sha256 {config.init_adapter_sha256}: point --init-adapter "
                "at the adapter you meant, or drop the pin")
        config = config.replace(init_adapter_sha256=digest)
    if config.method != "dpo":
        return config
    reference = config.reference
    if reference == "auto":
        reference = "init_adapter" if config.init_adapter else "base"
    defaults = type(config)()
    for name, why in IGNORED.items():
        if getattr(config, name) != getattr(defaults, name):
            log.info("%s: ignored for method dpo (%s)", name, why)
    return config.replace(reference=reference, packing=False, train_on_inputs=False,
                          loss=defaults.loss)


def describe(config) -> str:
    """One line for logs and cards: what the run starts from and what it is compared with."""
    if config.method != "dpo":
        return "SFT" + (f" from {config.init_adapter}" if config.init_adapter else "")
    ref = ("the init adapter (frozen copy)" if config.reference == "init_adapter"
           else "the base model")
    start = f"from {config.init_adapter}" if config.init_adapter else "from the base"
    return f"DPO {start}, reference {ref}, beta {config.beta}, loss {config.loss_type}"


def lineage(config) -> str | None:
    """"SFT on X -> DPO on Y (reference ...)" for the run records (adapter_folder.TRAIN_METRICS) and the card; None for SFT
    from scratch. Local paths are shown by their public name only."""
    from a3duck.files import public_name

    if config.method != "dpo" and not config.init_adapter:
        return None
    start = ""
    if config.init_adapter:
        before = af.train_config(af.resolve(config.init_adapter))
        start = (f"{before.method.upper()} on {_data_name(before.data)}" if before else
                 f"the adapter {public_name(config.init_adapter)}") + " → "
    if config.method != "dpo":
        return f"{start}SFT on {_data_name(config.data)}"
    ref = "a frozen copy of the init adapter" if config.reference == "init_adapter" else \
        "the base model"
    return f"{start}DPO on {_data_name(config.data)} (reference: {ref}, beta {config.beta:g})"


def _data_name(data) -> str:
    from a3duck.files import public_name

    return public_name(data) if isinstance(data, str) else "a mixture of sources"


def attach(model, config):
    """``model`` with its trainable IA3 adapter: a fresh one (vectors at 1.0), or
    ``config.init_adapter`` loaded trainable (its own target modules)."""
    if not config.init_adapter:
        return models.attach_ia3(model, config.target_modules, config.feedforward_modules)
    from peft import PeftModel

    folder = af.resolve(config.init_adapter)
    kind = af.read_config(folder).get("peft_type")
    if kind != "IA3":
        raise ConfigError(f"init_adapter: {config.init_adapter} is a {kind} adapter; a3duck "
                          "trains IA3 adapters only")
    models.check_adapter_matches(model, folder, config.base_model)
    if config.target_modules or config.feedforward_modules:
        log.info("target_modules/feedforward_modules: ignored, the init adapter's are used")
    log.info("starting from the adapter %s", config.init_adapter)
    return PeftModel.from_pretrained(model, str(folder), adapter_name=POLICY_ADAPTER,
                                     is_trainable=True)


def trainer_class():
    """DPOTrainer that takes a3duck's pre-tokenised pairs (a3duck.preference) as they are."""
    from trl import DPOTrainer

    class PretokenizedDPOTrainer(DPOTrainer):
        # trl 1.16 always re-tokenises text columns (_prepare_dataset); a3duck's pairs are
        # tokenised as SFT rows are and fitted to the cutoff (counted), so they pass unchanged.
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            from a3duck.preference import COLUMNS

            if set(COLUMNS) <= set(dataset.column_names):
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    return PretokenizedDPOTrainer


def build_trainer(config, model, tokenizer, dataset, common_args: dict):
    """The DPOTrainer for this run, its reference checked (see the module docstring)."""
    from trl import DPOConfig

    args = DPOConfig(**common_args, beta=config.beta, loss_type=[config.loss_type],
                     max_length=config.cutoff_len, precompute_ref_log_probs=False,
                     include_num_input_tokens_seen="non_padding")
    trainer = trainer_class()(model=model, args=args, train_dataset=dataset,
                              processing_class=tokenizer)
    set_reference(trainer.model, config)
    log.info("%s", describe(config))
    return trainer


def reference_tensors(config) -> dict[str, torch.Tensor] | None:
    """The init adapter's tensors when it is the reference; None for the base."""
    if config.reference != "init_adapter":
        return None
    return af.tensors(af.resolve(config.init_adapter))


def set_reference(model, config) -> None:
    """Make TRL's "ref" adapter the reference ``config`` asks for, and check every vector:
    equal to the init adapter's (reference init_adapter) or 1.0 (reference base)."""
    from peft import set_peft_model_state_dict

    if REF_ADAPTER not in model.peft_config:  # a fresh adapter: TRL disables adapters instead
        if config.init_adapter and config.reference == "init_adapter":
            raise TrainingError("DPOTrainer made no reference adapter for the init adapter; "
                                "this trl version is not supported (see a3duck.dpo)")
        return
    wanted = reference_tensors(config)
    if wanted is not None:
        result = set_peft_model_state_dict(model, wanted, adapter_name=REF_ADAPTER)
        if getattr(result, "unexpected_keys", None):
            raise TrainingError(f"the init adapter's tensors {result.unexpected_keys[:3]} fit no "
                                "module of the reference adapter")
    ref = {n: p for n, p in model.named_parameters() if n.endswith("." + REF_ADAPTER)}
    if not ref:
        raise TrainingError("the reference adapter holds no parameters")
    for param in ref.values():  # frozen (PEFT can leave an added adapter trainable, e.g. bf16)
        param.requires_grad_(False)
    for name, param in ref.items():
        expected = torch.ones_like(param) if wanted is None else \
            wanted[_saved_name(name)].to(param.dtype)
        if param.requires_grad or not torch.equal(param.detach().cpu(), expected.cpu()):
            raise TrainingError(f"reference adapter {name} is not the {config.reference} "
                                "reference (trainable or other values); refusing to train")
    log.info("reference: %s (%d vectors checked)", config.reference, len(ref))


def _saved_name(param_name: str) -> str:
    """The key of a PEFT parameter (``...ia3_l.ref``) in a saved adapter file (``...ia3_l``)."""
    return param_name.rsplit(".", 1)[0]


def drop_reference(model) -> None:
    """Remove the "ref" adapter before the trained one is saved (only "default" ships)."""
    if REF_ADAPTER in getattr(model, "peft_config", {}):
        model.delete_adapter(REF_ADAPTER)
