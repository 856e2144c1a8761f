"""The model behind the Space: configuration, one load per process, the adapter on/off gate.

:class:`Runtime` owns the one model in memory. Requests that want the adapter on and requests
that want it off (PEFT's ``disable_adapter()``) must not overlap, so they pass through an
:class:`AdapterGate`: any number of requests of the same mode run together, and the mode only
switches when the running ones have finished.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from a3duck.errors import A3DuckError

log = logging.getLogger(__name__)

SPACE_BASE_MODEL = "meta-llama/Llama-2-13b-hf"
SPACE_ADAPTER = "DopeorNope/A3_duck"


def on_gpu_space() -> bool:
    """True on a Hugging Face Space (``SPACE_ID`` is set there) that has a GPU."""
    import torch

    return bool(os.environ.get("SPACE_ID")) and torch.cuda.is_available()


@dataclass
class ServeConfig:
    """What to serve and how; resolved from flags, then environment, then defaults."""

    base_model: str | None = None  # None: adapter's recorded base, else the embedded SmolLM2
    adapter: str | None = None  # None / "none": the base model alone
    revision: str | None = None  # adapter revision on the Hub
    device: str = "auto"
    dtype: str = "auto"  # auto | bf16 | fp32
    merge: bool = False  # fold the adapter into the weights: faster, but no base-vs-adapter
    host: str = "127.0.0.1"
    port: int = 7860
    queue_size: int = 64  # visitors waiting beyond this are told to retry
    concurrency: int = 2  # generations running at once
    share: bool = False

    @classmethod
    def resolve(cls, **flags) -> ServeConfig:
        """Flags (None = not given) override environment, which overrides defaults."""
        env = {
            "base_model": os.environ.get("A3DUCK_BASE_MODEL"),
            "adapter": os.environ.get("A3DUCK_ADAPTER"),
            "port": os.environ.get("GRADIO_SERVER_PORT"),
            "host": os.environ.get("GRADIO_SERVER_NAME"),
        }
        merged = {k: v for k, v in env.items() if v}
        merged.update({k: v for k, v in flags.items() if v is not None})
        if "base_model" not in merged and "adapter" not in merged and on_gpu_space():
            merged.update(base_model=SPACE_BASE_MODEL, adapter=SPACE_ADAPTER)
        if os.environ.get("SPACE_ID") and "host" not in merged:
            merged["host"] = "0.0.0.0"  # a Space's proxy reaches the app from outside
        if str(merged.get("adapter", "")).lower() in ("none", ""):
            merged["adapter"] = None
        try:
            merged["port"] = int(merged.get("port", 7860))
        except ValueError:
            raise A3DuckError(f"port must be a number, got {merged['port']!r}") from None
        return cls(**merged)


class AdapterGate:
    """Lets requests run with the adapter on or off without racing on the toggle."""

    def __init__(self, model):
        self._model = model
        self._cond = threading.Condition()
        self._adapter_on = True
        self._active = 0
        self._waiting = {True: 0, False: 0}
        self._disabled: contextlib.ExitStack | None = None

    @property
    def adapter_on(self) -> bool:
        return self._adapter_on

    @contextlib.contextmanager
    def use(self, adapter_on: bool):
        """Hold the model in the requested mode for the duration of the block."""
        with self._cond:
            self._waiting[adapter_on] += 1
            # Join the running mode only if nobody waits for the other one (no starvation).
            while not (self._active == 0 or (self._adapter_on == adapter_on
                                              and not self._waiting[not adapter_on])):
                self._cond.wait()
            self._waiting[adapter_on] -= 1
            if adapter_on != self._adapter_on:
                self._switch(adapter_on)
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                # Back to the default (adapter on) when idle: no PEFT context is left open.
                if not self._active and not self._adapter_on and not self._waiting[False]:
                    self._switch(True)
                self._cond.notify_all()

    def _switch(self, adapter_on: bool) -> None:
        if adapter_on:
            self._disabled.close()  # leaves PEFT's disable_adapter() context
            self._disabled = None
        else:
            self._disabled = contextlib.ExitStack()
            self._disabled.enter_context(self._model.disable_adapter())
        self._adapter_on = adapter_on


@dataclass
class ModelInfo:
    """What the About panel shows."""

    base_model: str
    adapter: str | None
    revision: str | None
    template: str
    trainable_params: int
    total_params: int
    dtype: str
    device: str
    context_window: int
    merged: bool
    adapter_local: bool = False
    ia3_plot: str | None = None  # PNG heatmap of the learned IA3 vectors (a3duck inspect)

    @property
    def card_url(self) -> str | None:
        if self.adapter and not self.adapter_local:
            return f"https://huggingface.co/{self.adapter}"
        return None


def ia3_plot(adapter: str | None, revision: str | None = None) -> str | None:
    """The adapter's IA3 heatmap: the one shipped in its plots/ folder, else drawn now into a
    temporary folder (reads only the small adapter file). None without an adapter."""
    if not adapter:
        return None
    import tempfile

    from a3duck.inspect import inspect_adapter
    from a3duck.models import resolve_adapter

    folder = resolve_adapter(adapter, revision)
    shipped = folder / "plots" / "ia3_heatmap.png"
    if shipped.is_file():
        return str(shipped)
    try:
        out = Path(tempfile.mkdtemp(prefix="a3duck-plots-"))
        inspect_adapter(folder, out)
    except Exception as exc:  # noqa: BLE001 - the About panel must not stop the Space
        log.warning("could not draw the IA3 plot: %s", exc)
        return None
    return str(out / "ia3_heatmap.png")


def _is_local(name: str) -> bool:
    return Path(name).expanduser().exists()


class Runtime:
    """The loaded model, tokenizer and template, shared by every request of the process."""

    def __init__(self, model, tokenizer, template, info: ModelInfo):
        self.model, self.tokenizer, self.template, self.info = model, tokenizer, template, info
        self.can_toggle = bool(info.adapter) and not info.merged
        self.gate = AdapterGate(model) if self.can_toggle else None
        self.last_stats = None
        self.scorer = None  # the evaluation backend on this model (scoring.scorer), built lazily
        self._count_lock = threading.Lock()
        self.running = 0
        self.peak_running = 0

    @contextlib.contextmanager
    def session(self, adapter_on: bool = True):
        """Run a model call in the requested mode; counts calls in flight (for the load test)."""
        if not adapter_on and not self.can_toggle:
            raise A3DuckError(self.toggle_explanation())
        gate = self.gate.use(adapter_on) if self.gate else contextlib.nullcontext()
        with gate:
            with self._count_lock:
                self.running += 1
                self.peak_running = max(self.peak_running, self.running)
            try:
                yield self.model
            finally:
                with self._count_lock:
                    self.running -= 1

    def toggle_explanation(self) -> str:
        if not self.info.adapter:
            return "No adapter is loaded (adapter = none): there is only the base model."
        return ("The adapter was merged into the base weights for speed (--merge), so it cannot "
                "be switched off. Restart without --merge to compare base and adapter.")

    @classmethod
    def load(cls, config: ServeConfig) -> Runtime:
        """Load base (+ adapter) once; raises ModelError / A3DuckError with what to fix."""
        from a3duck import models
        from a3duck.prompts import get_template

        dtype = models.pick_dtype(config.dtype, config.device)
        device = None if config.device == "auto" else config.device
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else None
        model, tokenizer = models.load(config.base_model, config.adapter, dtype=dtype,
                                       device=device, revision=config.revision)
        template = get_template(_template_name(config))
        trainable, total = _adapter_params(model)
        if config.merge and config.adapter:
            model = model.merge_and_unload().eval()
        base = _display_name(getattr(model.config, "name_or_path", None)
                             or str(config.base_model))
        info = ModelInfo(
            base_model=base, adapter=config.adapter and _display_name(config.adapter),
            revision=config.revision, template=template.name, trainable_params=trainable,
            total_params=total, dtype=str(dtype).removeprefix("torch."),
            device=str(next(model.parameters()).device), merged=bool(config.merge and config.adapter),
            context_window=context_window(model, tokenizer),
            adapter_local=bool(config.adapter and _is_local(config.adapter)),
            ia3_plot=ia3_plot(config.adapter, config.revision),
        )
        from a3duck.generation import stop_criterion

        stop_criterion(tokenizer, tuple(template.stop_markers))  # built once, before visitors
        log.info("serving %s + %s (%s on %s)", info.base_model, info.adapter, info.dtype,
                 info.device)
        return cls(model, tokenizer, template, info)


def _template_name(config: ServeConfig) -> str:
    """The template recorded in the adapter's a3duck_config.yaml (alpaca when absent)."""
    if not config.adapter:
        return "alpaca"
    from a3duck.models import adapter_train_config

    trained = adapter_train_config(config.adapter, config.revision)
    return trained.prompt_template if trained else "alpaca"


def _adapter_params(model) -> tuple[int, int]:
    """(adapter parameters, all parameters): the adapter's even when loaded frozen."""
    total = sum(p.numel() for p in model.parameters())
    adapter = sum(p.numel() for n, p in model.named_parameters() if "ia3_" in n)
    return adapter, total


def _display_name(adapter: str) -> str:
    """A Hub id as is; a local folder by its name only (no local paths on screen)."""
    return Path(adapter).name if _is_local(adapter) else adapter


def context_window(model, tokenizer) -> int:
    """Tokens the model can attend to: the config's limit, capped by the tokenizer's if set."""
    limit = getattr(model.config, "max_position_embeddings", None) or 2048
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if tok_limit and tok_limit < 1_000_000:
        limit = min(limit, tok_limit)
    return int(limit)
