"""The model behind the Space: configuration, one load per process, adapter selection.

:class:`Runtime` owns the one base model in memory with every served IA3 adapter attached side
by side (:class:`a3duck.multi_adapter.MultiAdapterModel`): a request names its adapter (or
``base``) and nothing is switched on or off, so requests for different adapters never wait for
each other. Generation goes through :class:`a3duck.space.scheduler.Scheduler`, which hands
every answer to the serving engine (continuous batching, one adapter per row; the same engine
as ``/v1``). With ``--merge`` the one adapter is
folded into the weights instead (faster, but no base and no other adapters).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from a3duck.errors import A3DuckError
from a3duck.files import public_name
from a3duck.hub_defaults import SPACE_ADAPTER, SPACE_BASE_MODEL
from a3duck.multi_adapter import BASE

log = logging.getLogger(__name__)


def on_space() -> bool:
    """True on a Hugging Face Space (``SPACE_ID`` is set there)."""
    return bool(os.environ.get("SPACE_ID"))


def on_gpu_space() -> bool:
    """True on a Hugging Face Space that has a GPU."""
    import torch

    return on_space() and torch.cuda.is_available()


@dataclass
class ServeConfig:
    """What to serve and how; resolved from flags, then environment, then defaults."""

    base_model: str | None = None  # None: adapter's recorded base, else the embedded SmolLM2
    adapter: str | None = None  # None / "none": the base alone; a comma list: a zoo (zoo.py)
    revision: str | None = None  # adapter revision on the Hub
    device: str = "auto"
    dtype: str = "auto"  # auto | bf16 | fp32
    merge: bool = False  # fold the adapter into the weights: faster, but no base-vs-adapter
    host: str = "127.0.0.1"
    port: int = 7860
    queue_size: int = 64  # visitors waiting beyond this are told to retry
    concurrency: int = 8  # requests served at once (their rows decoded together by the engine)
    share: bool = False
    mcp: bool = False  # also serve the endpoints as MCP tools (Gradio's mcp_server=True)

    @classmethod
    def resolve(cls, config_file: Path | None = None, **flags) -> ServeConfig:
        """Flags (None = not given) override environment, which overrides the Space's config
        file (``config_file``, if it exists), which overrides defaults."""
        env = {
            "base_model": os.environ.get("A3DUCK_BASE_MODEL"),
            "adapter": os.environ.get("A3DUCK_ADAPTER"),
            "port": os.environ.get("GRADIO_SERVER_PORT"),
            "host": os.environ.get("GRADIO_SERVER_NAME"),
            "mcp": os.environ.get("A3DUCK_MCP", "").lower() in ("1", "true", "yes") or None,
        }
        merged = read_space_config(config_file) if config_file else {}
        merged.update({k: v for k, v in env.items() if v})
        merged.update({k: v for k, v in flags.items() if v is not None})
        if "base_model" not in merged and "adapter" not in merged and on_gpu_space():
            merged.update(base_model=SPACE_BASE_MODEL, adapter=SPACE_ADAPTER)
        if on_space() and "host" not in merged:
            merged["host"] = "0.0.0.0"  # a Space's proxy reaches the app from outside
        if str(merged.get("adapter", "")).lower() in ("none", ""):
            merged["adapter"] = None
        try:
            merged["port"] = int(merged.get("port", 7860))
        except ValueError:
            raise A3DuckError(f"port must be a number, got {merged['port']!r}") from None
        return cls(**merged)


def read_space_config(path: Path) -> dict:
    """ServeConfig fields from a Space's config file (absent file: none). Every adapter the file
    lists is served (a zoo, as with several ``--adapter``)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    adapters = [str(a) for a in data.get("adapters") or [] if a]
    out = {"base_model": data.get("base_model"), "revision": data.get("revision"),
           "adapter": ",".join(adapters) or "none", "mcp": bool(data.get("mcp"))}
    return {k: v for k, v in out.items() if v}


@dataclass
class ModelInfo:
    """What the About panel shows of the base and of the default adapter (the first served, or
    the merged one); every served adapter's own facts are :attr:`Runtime.adapters`."""

    base_model: str
    adapter: str | None  # the default adapter's source (None: the base alone)
    revision: str | None
    template: str
    trainable_params: int
    total_params: int
    dtype: str
    device: str
    context_window: int
    merged: bool
    adapter_local: bool = False
    ia3_plot: str | None = None  # the default adapter's IA3 heatmap PNG (a3duck inspect)

    @property
    def card_url(self) -> str | None:
        if self.adapter and not self.adapter_local:
            return f"https://huggingface.co/{self.adapter}"
        return None


class Runtime:
    """The loaded model, tokenizer and templates, shared by every request of the process."""

    def __init__(self, multi, tokenizer, template, info: ModelInfo, adapters=(),
                 unavailable=()):
        from a3duck.space.scheduler import Scheduler

        self.multi, self.model = multi, multi.model
        self.tokenizer, self.template, self.info = tokenizer, template, info
        self.adapters = list(adapters)  # zoo.AdapterInfo, in the order given
        self.unavailable = list(unavailable)  # (name, reason): asked for, could not be fetched
        self.can_toggle = bool(info.adapter) and not info.merged
        self.scheduler = Scheduler(multi, tokenizer)
        self.last_stats = None
        # the evaluation backend on this model (scoring.scorer), built lazily; it scores with
        # the adapter that scoring_session makes active on the calling thread
        self.scorer = None
        self._count_lock = threading.Lock()
        self.running = 0
        self.peak_running = 0

    @property
    def default_folder(self):
        """The default (first) adapter's local folder, where its results files are looked
        for; None for the base alone or a merged model."""
        return self.multi.sources[0].folder if self.multi.sources else None

    @property
    def choices(self) -> list[str]:
        """The names a visitor may pick: the adapters, then ``base`` (where it can be had)."""
        if self.info.merged:
            return [self.info.adapter]
        return [a.name for a in self.adapters] + [BASE]

    def pick(self, adapter_on: bool | str = True, adapter: str | None = None) -> str:
        """The name a request runs with: ``adapter`` (or a name passed as ``adapter_on``) if
        given, else the first adapter; ``adapter_on=False`` (the old API's switch) is the base."""
        if isinstance(adapter_on, str):
            adapter_on, adapter = True, adapter_on
        if not adapter_on or adapter == BASE:
            if not self.can_toggle and self.info.adapter:
                raise A3DuckError(self.toggle_explanation())
            return BASE if not self.info.merged else self.info.adapter
        if adapter in (None, ""):
            return self.choices[0]
        if adapter not in self.choices:
            raise A3DuckError(f"unknown adapter {adapter!r}: this Space serves "
                              f"{', '.join(self.choices)}")
        return adapter

    def internal_name(self, name: str) -> str:
        return BASE if self.info.merged else name  # merged: the weights hold the adapter

    def template_for(self, name: str):
        """The instruction template of adapter ``name`` (the first adapter's for the base)."""
        from a3duck.prompts import get_template

        found = next((a.template for a in self.adapters if a.name == name), None)
        return get_template(found, self.tokenizer) if found else self.template

    @contextlib.contextmanager
    def _counted(self):
        with self._count_lock:
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)
        try:
            yield
        finally:
            with self._count_lock:
                self.running -= 1

    @contextlib.contextmanager
    def session(self, adapter_on: bool | str = True, adapter: str | None = None):
        """A model view with one adapter (or the base) for every row of its calls."""
        name = self.pick(adapter_on, adapter)
        with self._counted(), self.multi.select(self.internal_name(name)) as model:
            yield model

    @contextlib.contextmanager
    def scoring_session(self, adapter_on: bool | str = True, adapter: str | None = None):
        """The loaded model itself with one adapter (or the base) active on this thread, for
        code that calls its submodules directly (the evaluation backend: ``self.scorer``)."""
        name = self.pick(adapter_on, adapter)
        with self._counted(), self.multi.active(self.internal_name(name)) as model:
            yield model

    def stream(self, input_ids, settings, markers, stats, name: str):
        """Generate through the scheduler (batched with other requests); yields the text."""
        with self._counted():
            yield from self.scheduler.stream(input_ids, self.internal_name(name), settings,
                                             markers, stats)

    def toggle_explanation(self) -> str:
        if not self.info.adapter:
            return "No adapter is loaded (adapter = none): there is only the base model."
        return ("The adapter was merged into the base weights for speed (--merge), so it cannot "
                "be switched off. Restart without --merge to compare base and adapter.")

    @classmethod
    def load(cls, config: ServeConfig) -> Runtime:
        """Load the base once with every adapter; raises ModelError / A3DuckError."""
        from a3duck import adapter_folder
        from a3duck.generation import stop_criterion
        from a3duck.prompts import get_template
        from a3duck.space.zoo import load_zoo

        dtype, device = _dtype_and_device(config)
        multi, tokenizer, adapters, unavailable = load_zoo(config, dtype, device)
        template = get_template(adapters[0].template if adapters
                                else adapter_folder.template(None), tokenizer)
        trainable = adapters[0].params if adapters else 0
        info = ModelInfo(
            base_model=public_name(getattr(multi.model.config, "name_or_path", None)
                                   or str(config.base_model)),
            adapter=adapters[0].name if adapters else None, revision=config.revision,
            template=template.name, trainable_params=trainable,
            total_params=trainable + sum(p.numel() for p in multi.model.parameters()),
            dtype=str(dtype).removeprefix("torch."), device=str(multi.device),
            merged=bool(config.merge and adapters),
            context_window=context_window(multi.model, tokenizer),
            adapter_local=bool(adapters and adapters[0].local),
            ia3_plot=adapters[0].ia3_plot if adapters else None,
        )
        for name in {a.template for a in adapters} | {template.name}:  # built before visitors
            markers = get_template(name, tokenizer).stop_markers
            if markers:  # chat stops at the end-of-turn token (EOS), not at text
                stop_criterion(tokenizer, tuple(markers))
        log.info("serving %s + %s (%s on %s)", info.base_model,
                 ", ".join(a.name for a in adapters) or "no adapter", info.dtype, info.device)
        return cls(multi, tokenizer, template, info, adapters, unavailable)


def _dtype_and_device(config: ServeConfig):
    """(torch dtype, device or None) the Space loads with."""
    from a3duck import models
    from a3duck.space.zerogpu import on_zerogpu

    # On ZeroGPU no GPU is attached while loading: asking it for bf16 support would
    # initialise CUDA. Its H200 slices support bf16; the weights go to CUDA now, as ZeroGPU
    # wants (spaces moves them onto the GPU when a request attaches one).
    precision = "bf16" if config.dtype == "auto" and on_zerogpu() else config.dtype
    dtype = models.pick_dtype(precision, config.device)
    device = None if config.device == "auto" else config.device
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else None
    return dtype, device


def context_window(model, tokenizer) -> int:
    """Tokens the model can attend to: the config's limit, capped by the tokenizer's if set."""
    limit = getattr(model.config, "max_position_embeddings", None) or 2048
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if tok_limit and tok_limit < 1_000_000:
        limit = min(limit, tok_limit)
    return int(limit)
