"""One base model, many IA3 adapters, one batch: every row runs with its own adapter (or none).

Why this is exact. An (IA)^3 adapter changes a Llama only through elementwise scales: for a
target module ``y = W x`` it computes ``y * l`` (keys, values: one scale per output feature,
PEFT's ``ia3_l`` of shape ``(out, 1)``), for a feed-forward module ``W (x * l)`` (``down_proj``:
one scale per input feature, shape ``(1, in)``). Both products are per feature and per token;
nothing mixes rows. So for a batch whose row ``r`` should use adapter ``a_r`` we stack every
adapter's vector for a module into a tensor ``S`` of shape ``[n_adapters + 1, dim]`` (row 0 is all
ones: the base model), gather ``S[index]`` (``index[r] = a_r``) into ``[batch, 1, dim]`` and
multiply: row ``r`` gets exactly ``y_r * l_{a_r}`` — the same multiplication, in the same dtype
(the vectors stay in fp32 and are cast like PEFT's ``IA3Layer.forward`` does), as that adapter's
own ``PeftModel``. A module an adapter does not target gets ones for it, and ``x * 1.0 == x``
in floating point, so base rows are the plain base model bit for bit. Attention, padding and the
KV cache are untouched, so left-padded rows of different lengths behave as in any batch.

How: :class:`MultiAdapterModel` replaces each targeted ``nn.Linear`` of a base model it owns by
an :class:`IA3Bank` (our own module holding the base layer and the stacked scales) and selects
the rows' adapters through a per-thread index (:meth:`MultiAdapterModel.select`), so two threads
can run the same model with different selections. Nothing in PEFT or transformers is patched.
Adapters are checked before any weights load: another recorded base id, modules the base does
not have or shapes that do not fit are refused with :class:`AdapterMismatchError`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from a3duck import adapter_folder, models
from a3duck.adapter_folder import ia3_vectors, recorded_base
from a3duck.adapter_names import BASE
from a3duck.errors import AdapterMismatchError, ModelError

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class AdapterSource:
    """One adapter to load: its display name, where it comes from and the resolved folder."""

    name: str
    source: str
    folder: Path
    revision: str | None = None


def same_base(a: str | None, b: str | None) -> bool:
    """Recorded base ids agree: equal, or one of them is a local folder (shapes decide)."""
    if not a or not b or a == b:
        return True
    return Path(a).expanduser().is_dir() or Path(b).expanduser().is_dir()


def check_bases(sources: Sequence[AdapterSource], base_id: str | None) -> None:
    """Refuse adapters recorded for another base than ``base_id`` (or than each other)."""
    expected = base_id or next((recorded_base(s.folder) for s in sources), None)
    for src in sources:
        trained_on = recorded_base(src.folder)
        if not same_base(trained_on, expected):
            raise AdapterMismatchError(
                f"adapter {src.name!r} ({src.source}) was trained on {trained_on!r}, not on "
                f"{expected!r}: every adapter served together must share one base model. "
                "Serve it with its own base (--base-model) or leave it out.")


class IA3Bank(nn.Module):
    """A base ``nn.Linear`` with the IA3 scales of several adapters, applied row by row."""

    def __init__(self, base_layer: nn.Linear, selection: _Selection, n_adapters: int):
        super().__init__()
        self.base_layer = base_layer
        self._selection = selection
        self.n_adapters = n_adapters
        self.register_buffer("in_scales", None)  # [n + 1, in_features] (feed-forward)
        self.register_buffer("out_scales", None)  # [n + 1, out_features]

    def set_vector(self, slot: int, vector: torch.Tensor) -> None:
        """Store adapter ``slot``'s PEFT vector: ``(1, in)`` feed-forward, ``(out, 1)`` not."""
        feedforward = vector.shape[0] == 1 and vector.numel() == self.base_layer.in_features
        name = "in_scales" if feedforward else "out_scales"
        dim = self.base_layer.in_features if feedforward else self.base_layer.out_features
        if getattr(self, name) is None:
            setattr(self, name, torch.ones(self.n_adapters + 1, dim, dtype=torch.float32,
                                           device=self.base_layer.weight.device))
        getattr(self, name)[slot] = vector.flatten().to(torch.float32)

    def _rows(self, scales: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        index = self._selection.index(x.shape[0], scales.device)
        rows = scales[index]  # [batch, dim] (or [1, dim] when every row uses one adapter)
        return rows.view(rows.shape[0], *([1] * (x.dim() - 2)), rows.shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        previous = x.dtype
        if self.in_scales is not None:  # as PEFT: scale in the vector's dtype, cast back
            x = (x.to(self.in_scales.dtype) * self._rows(self.in_scales, x)).to(previous)
        result = self.base_layer(x)
        if self.out_scales is not None:
            result = (result * self._rows(self.out_scales, result)).to(result.dtype)
        return result


class _Selection(threading.local):
    """The adapter index of every row, per thread (set by MultiAdapterModel.select)."""

    rows: torch.Tensor | None = None

    def index(self, batch: int, device) -> torch.Tensor:
        rows = self.rows if self.rows is not None else torch.zeros(1, dtype=torch.long)
        if rows.numel() not in (1, batch):
            raise ModelError(f"{rows.numel()} adapter names for a batch of {batch} rows")
        return rows.to(device)


class MultiAdapterModel:
    """A causal LM (owned) with any number of IA3 adapters; rows pick theirs by name."""

    def __init__(self, model, sources: Sequence[AdapterSource] = ()):
        self.model = model
        self.names = [BASE] + [s.name for s in sources]
        if len(set(self.names)) != len(self.names):
            raise ModelError(f"adapter names must be unique and not {BASE!r}: {self.names}")
        self.sources = list(sources)
        self.capacity = len(self.sources)  # adapter slots every bank has room for (1..capacity)
        self._selection = _Selection()
        self.banks: dict[str, IA3Bank] = {}
        for slot, src in enumerate(self.sources, start=1):
            for module_name, vector in ia3_vectors(src.folder).items():
                self._bank(module_name).set_vector(slot, vector)

    def _bank(self, module_name: str) -> IA3Bank:
        if module_name not in self.banks:
            parent_name, _, child = module_name.rpartition(".")
            parent = self.model.get_submodule(parent_name)
            bank = IA3Bank(getattr(parent, child), self._selection, self.capacity)
            setattr(parent, child, bank)
            self.banks[module_name] = bank
        return self.banks[module_name]

    @property
    def device(self):
        return self.model.device

    def reserve(self, capacity: int) -> None:
        """Give every bank room for adapter slots ``1..capacity`` (new slots are ones: base)."""
        for bank in self.banks.values():
            for name in ("in_scales", "out_scales"):
                scales = getattr(bank, name)
                if scales is not None and scales.shape[0] < capacity + 1:
                    more = torch.ones(capacity + 1 - scales.shape[0], scales.shape[1],
                                      dtype=scales.dtype, device=scales.device)
                    setattr(bank, name, torch.cat([scales, more]))
            bank.n_adapters = max(bank.n_adapters, capacity)
        self.capacity = max(self.capacity, capacity)

    def write_slot(self, slot: int, vectors: dict[str, torch.Tensor]) -> None:
        """Put one adapter's vectors (:func:`read_vectors`) into slot ``slot`` (1..capacity);
        modules it does not target keep ones there (call :meth:`clear_slot` first)."""
        for module_name, vector in vectors.items():
            self._bank(module_name).set_vector(slot, vector)

    def clear_slot(self, slot: int) -> None:
        """Slot ``slot`` becomes the base again (all ones)."""
        for bank in self.banks.values():
            for scales in (bank.in_scales, bank.out_scales):
                if scales is not None:
                    scales[slot] = 1.0

    @contextlib.contextmanager
    def slots(self, rows: torch.Tensor):
        """Within the block (this thread only), row ``r`` uses adapter slot ``rows[r]`` (0 is
        the base): the serving engine's selection by slot number instead of name."""
        previous = self._selection.rows
        self._selection.rows = rows.to(self.model.device)
        try:
            yield self.model
        finally:
            self._selection.rows = previous

    def index_of(self, names: Sequence[str]) -> torch.Tensor:
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise ModelError(f"unknown adapter {unknown[0]!r}; loaded: {', '.join(self.names)}")
        return torch.tensor([self.names.index(n) for n in names], dtype=torch.long)

    @contextlib.contextmanager
    def _selected(self, names: str | Sequence[str]):
        """Within the block (this thread only), row ``r`` uses adapter ``names[r]``; one name
        applies to every row."""
        rows = self.index_of([names] if isinstance(names, str) else names)
        with self.slots(rows) as model:  # one copy to the device per call, not per layer
            yield model

    @contextlib.contextmanager
    def active(self, names: str | Sequence[str]):
        """Within the block, on this thread only, the owned model itself uses ``names`` in every
        call, also of its submodules called directly (the evaluation backend calls the
        decoder and the output embeddings itself); yields that model."""
        with self._selected(names) as model:
            yield model

    @contextlib.contextmanager
    def select(self, names: str | Sequence[str]):
        """A model-like view whose calls (on any thread) use ``names``: one name for every
        row, or one per row."""
        self.index_of([names] if isinstance(names, str) else names)  # fail early
        yield Selected(self, names)

    def __call__(self, adapter_names: Sequence[str], **inputs):
        """Forward pass; row ``r`` of the inputs uses ``adapter_names[r]``."""
        with self._selected(adapter_names) as model:
            return model(**inputs)

    def generate(self, adapter_names: Sequence[str], **kwargs):
        """``model.generate`` with one adapter per row (no beam search: rows must stay rows)."""
        if kwargs.get("num_beams", 1) != 1 or kwargs.get("num_return_sequences", 1) != 1:
            raise ModelError("mixed-adapter generation supports one sequence per row")
        with self._selected(adapter_names) as model:
            return model.generate(**kwargs)


class Selected:
    """The base model seen through a fixed adapter selection: ``__call__`` and ``generate``
    select on the thread that runs them (``stream_generate`` runs ``generate`` on its own
    thread); every other attribute (``device``, ``config``, ...) is the model's."""

    def __init__(self, multi: MultiAdapterModel, names: str | Sequence[str]):
        self._multi, self._names = multi, names

    def __call__(self, *args, **kwargs):
        with self._multi._selected(self._names) as model:
            return model(*args, **kwargs)

    def generate(self, *args, **kwargs):
        with self._multi._selected(self._names) as model:
            return model.generate(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._multi.model, name)


def load_multi(base: str | None, sources: Sequence[AdapterSource], *, dtype=None,
               device=None) -> tuple[MultiAdapterModel, object]:
    """Check every adapter against the base (recorded id, module names, shapes) on an empty
    (meta) copy of the base, then load the base once and attach all adapters. Returns
    ``(MultiAdapterModel, tokenizer)``."""
    base = base_name(base, sources)
    path = models.resolve_base_model(base)
    check_bases(sources, models.hub_id_for(base, path))
    skeleton = meta_model(path)
    for src in sources:
        models.check_adapter_matches(skeleton, src.folder, base)
    model, _ = models.load_base(base, dtype=dtype, device=device)
    tokenizer_dir = next((str(s.folder) for s in sources
                          if adapter_folder.has_tokenizer(s.folder)), path)
    tokenizer = models.load_tokenizer(tokenizer_dir)
    return MultiAdapterModel(model.eval(), sources), tokenizer


def base_name(base: str | None, sources: Sequence[AdapterSource]) -> str:
    """The base to serve: the one given, else the first adapter's recorded base, else the
    embedded model."""
    if base is None:
        base = adapter_folder.base_of(sources[0].folder if sources else None)
    return base


def meta_model(path: str):
    """The base's modules with no weights (for shape checks before anything loads)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)
