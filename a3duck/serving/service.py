"""What the OpenAI routes (and the Space) serve: one engine, one adapter store, one tokenizer.

:class:`Service` turns an OpenAI-style request (model name, prompt ids, sampling, limits) into
an engine :class:`Request` on the adapter's slot, holds that adapter while it runs, and answers
the model list. Nothing here knows HTTP: the routes are in :mod:`a3duck.serving.openai_api`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from a3duck import adapter_folder, models
from a3duck.errors import InputError, ModelError
from a3duck.files import public_name
from a3duck.multi_adapter import BASE, AdapterSource
from a3duck.prompts import CHAT_NAME, get_template
from a3duck.serving.engine import MAX_BATCH, MAX_QUEUE, Engine
from a3duck.serving.request import Finished, Request, Sampling
from a3duck.serving.store import AdapterStore, UnknownModel, adapters_in

log = logging.getLogger(__name__)

API_KEY_ENV = "A3DUCK_API_KEY"
MAX_TOKENS = 2048  # the most tokens one answer may ask for (max_tokens above it: 400)


@dataclass(frozen=True)
class ApiConfig:
    """The serving flags of `a3duck serve` (see its --help)."""

    api_key: str | None = None  # Bearer key for /v1 (None: open); enables the admin routes
    adapters_dir: str | None = None  # every sub-folder holding an adapter is one
    max_adapters: int | None = None  # adapters held in memory at most (None: no cap)
    pins: tuple[str, ...] = ()  # never evicted
    max_batch: int = MAX_BATCH
    max_queue: int = MAX_QUEUE
    max_tokens: int = MAX_TOKENS

    @classmethod
    def resolve(cls, api_key=None, **flags) -> ApiConfig:
        """Flags (None: not given) over the environment (A3DUCK_API_KEY) over defaults."""
        key = api_key or os.environ.get(API_KEY_ENV) or None
        return cls(api_key=key, **{k: v for k, v in flags.items() if v is not None})


class Service:
    """The engine and the adapter store of one loaded base (see the module doc)."""

    def __init__(self, multi, tokenizer, base_id: str, context_window: int,
                 config: ApiConfig = ApiConfig(), merged: tuple[str, str] | None = None,
                 engine: Engine | None = None):
        """``merged``: (name, template) of an adapter folded into the weights (``--merge``):
        the model is served under that name only, since the base alone is not there.
        ``engine``: one already serving this model (the Space's), shared with this config's
        batch and queue limits; None: a new one."""
        self.tokenizer, self.base_id, self.context, self.config = (tokenizer, base_id,
                                                                    context_window, config)
        self.base_label = public_name(base_id)  # what /v1/models shows (no local paths)
        self.merged = merged
        if merged and config.adapters_dir:
            raise InputError("--adapters cannot be served on a merged model (--merge folds one "
                             "adapter into the weights): drop --merge to serve a zoo")
        self.store = AdapterStore(multi, base_id, config.max_adapters)
        if engine is None:
            engine = Engine.for_model(multi, tokenizer)
        engine.max_batch, engine.max_queue = config.max_batch, config.max_queue
        self.engine = engine
        if config.adapters_dir:
            for source in adapters_in(Path(config.adapters_dir)):
                held = self.store.entries.get(source.name)
                if held is not None and held.folder == source.folder:
                    continue  # also given with --adapter
                self.store.add(source, pinned=source.name in config.pins)
        unknown = [p for p in config.pins if p not in self.store.entries]
        if unknown:
            raise ModelError(f"--pin {unknown[0]}: no adapter of that name is served")

    # -- names and templates ------------------------------------------------------------------

    def resolve(self, model: str) -> str:
        """The internal name of an API ``model``: an adapter's name, or ``base`` (the base's id
        also names it); UnknownModel (404) otherwise."""
        if self.merged:
            if model == self.merged[0]:
                return BASE  # slot 0 holds the merged weights
            if model in (BASE, self.base_id, self.base_label):
                raise UnknownModel(f"the base model alone is not served here: adapter "
                                   f"{self.merged[0]!r} is merged into its weights (--merge); "
                                   f"ask for model {self.merged[0]!r}")
        elif model in (BASE, self.base_id, self.base_label):
            return BASE
        self.store.get(model)
        return model

    def template(self, name: str):
        """The prompt template ``name`` was trained with; the base: the tokenizer's chat
        template where it has one, else alpaca."""
        if name == BASE and self.merged:
            return get_template(self.merged[1], self.tokenizer)
        if name == BASE:
            chat = bool(getattr(self.tokenizer, "chat_template", None))
            return get_template(CHAT_NAME if chat else "alpaca", self.tokenizer)
        return get_template(self.store.get(name).template, self.tokenizer)

    def models(self) -> list[dict]:
        """``/v1/models`` rows: the base, then every adapter (held in memory or not)."""
        rows = [{"id": self.base_label, "object": "model", "created": 0, "owned_by": "a3duck",
                 "root": self.base_label, "parent": None,
                 "a3duck": {"kind": "base", "aliases": [BASE]}}]
        if self.merged:
            rows = [{"id": self.merged[0], "object": "model", "created": 0, "owned_by": "a3duck",
                     "root": self.merged[0], "parent": self.base_label,
                     "a3duck": {"kind": "ia3-adapter-merged", "base_model": self.base_label,
                                "template": self.merged[1]}}]
        for e in list(self.store.entries.values()):
            rows.append({"id": e.name, "object": "model", "created": e.created,
                         "owned_by": "a3duck", "root": e.source, "parent": self.base_label,
                         "a3duck": {"kind": "ia3-adapter", "base_model": self.base_label,
                                    "source": e.source, "revision": e.revision,
                                    "template": e.template, "pinned": e.pinned,
                                    "in_memory": e.slot is not None}})
        return rows

    # -- requests -----------------------------------------------------------------------------

    def check_room(self, prompt_len: int, max_tokens: int | None, default: int | None) -> int:
        """The answer's token budget; InputError (400) naming the numbers when it cannot fit."""
        room = self.context - prompt_len
        if max_tokens is None:
            max_tokens = min(default or room, room, self.config.max_tokens)
        if max_tokens > self.config.max_tokens:
            raise InputError(f"max_tokens is {max_tokens}; this server allows at most "
                             f"{self.config.max_tokens}")
        if prompt_len + max_tokens > self.context or room < 1:
            raise InputError(
                f"This model's maximum context length is {self.context} tokens. However, you "
                f"requested {prompt_len + max_tokens} tokens ({prompt_len} in the prompt, "
                f"{max_tokens} in the completion). Please reduce the prompt or max_tokens.")
        return max_tokens

    def start(self, name: str, prompt_ids: Sequence[int], sampling: Sampling, max_tokens: int,
              stop: Sequence[str], sink: Callable[[object], None], *, logprobs=None,
              echo=False) -> Request:
        """Queue one answer on ``name``'s adapter (held until it finishes); Overloaded (429)
        when the queue is full, ModelError when the adapter cannot be loaded."""
        entry = self.store.acquire(name)

        def forward(event):
            if isinstance(event, Finished):
                self.store.release(entry)
            sink(event)

        request = Request(prompt_ids, entry.slot if entry else 0, self.tokenizer, sampling,
                          max_tokens, stop, logprobs=logprobs, echo=echo,
                          eos=frozenset(self.engine.eos), context=self.context, sink=forward)
        try:
            return self.engine.submit(request)
        except Exception:
            self.store.release(entry)
            raise

    # -- admin --------------------------------------------------------------------------------

    def load_adapter(self, name: str, path: str | None = None, hub_id: str | None = None,
                     revision: str | None = None) -> dict:
        """Add an adapter at run time from a local folder or a Hub id (+ revision); refused
        (ModelError) before any weight loads when it is not an IA3 adapter of this base."""
        if self.merged:
            raise InputError("adapters cannot be added to a merged model (--merge): restart "
                             "without --merge to load adapters at run time")
        if bool(path) == bool(hub_id):
            raise InputError("give exactly one of 'path' (a local folder) or 'hub_id'")
        if name in (BASE, self.base_id, self.base_label):
            raise InputError(f"{name!r} is the base model's name: pick another")
        if hub_id:
            check_recorded_base(hub_id, revision, self.base_id)
        folder = adapter_folder.resolve(path or hub_id, revision)
        self.store.add(AdapterSource(name, path or hub_id, folder, revision), load=True)
        return next(m for m in self.models() if m["id"] == name)

    def unload_adapter(self, name: str) -> None:
        entry = self.store.get(name)
        if entry.pinned:
            raise InputError(f"{name!r} is pinned (--pin, or given with --adapter): it stays")
        self.store.remove(name)


def check_recorded_base(hub_id: str, revision: str | None, base_id: str) -> None:
    """Read only a Hub adapter's config and refuse one recorded for another base."""
    from huggingface_hub import hf_hub_download

    from a3duck.hub_access import hub_problem
    from a3duck.multi_adapter import same_base

    try:
        config = Path(hf_hub_download(hub_id, adapter_folder.ADAPTER_CONFIG, revision=revision))
    except Exception as exc:  # noqa: BLE001 - explained by its kind
        raise ModelError(f"cannot fetch adapter {hub_id!r}: "
                         f"{hub_problem(hub_id, revision, exc)}") from None
    trained_on = adapter_folder.recorded_base(config.parent)
    if not same_base(trained_on, base_id):
        from a3duck.errors import AdapterMismatchError

        raise AdapterMismatchError(f"adapter {hub_id!r} was trained on {trained_on!r}, not on "
                                   f"{base_id!r} (this server's base): serve it with its base")


def service_for(multi, tokenizer, context_window: int, config: ApiConfig,
                merged: tuple[str, str] | None = None, engine: Engine | None = None) -> Service:
    """The Service of a loaded :class:`MultiAdapterModel` (its base id is the model's
    recorded name: the Hub id, or the local folder given); ``merged``: see :class:`Service`."""
    base_id = getattr(multi.model.config, "name_or_path", None) or models.EMBEDDED_MODEL_ID
    return Service(multi, tokenizer, base_id, context_window, config, merged, engine)


__all__ = ["ApiConfig", "Service", "UnknownModel", "service_for"]
