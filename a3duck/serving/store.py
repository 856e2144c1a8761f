"""The adapter store: which adapters the server knows, which are in memory, and in which slot.

Every adapter the server can serve is *registered* (a name, where it comes from, its folder);
registered adapters are *held* in a slot of the :class:`MultiAdapterModel`'s banks while in
memory. ``max_adapters`` caps how many are held (None: no cap — an IA3 adapter is a few hundred
KB of vectors); past the cap the least recently used one not pinned and not in use is evicted
(its slot set back to ones) and reloaded from its folder on its next use. The adapters the model
was loaded with (``--adapter``: the Space's too) stay held; so do ``--pin`` ones.

Adding an adapter checks it before any weight is read into the model: its recorded base id must
be this server's base (:func:`a3duck.multi_adapter.check_bases`), and every tensor must fit a
module of the base (:func:`a3duck.models.check_adapter_matches` on an empty copy of the base).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from a3duck import adapter_folder, models
from a3duck.adapter_folder import ia3_vectors
from a3duck.errors import ModelError
from a3duck.files import public_name
from a3duck.multi_adapter import BASE, AdapterSource, check_bases

log = logging.getLogger(__name__)


class UnknownModel(ModelError):
    """No adapter (or base) of that name (HTTP 404)."""


@dataclass
class Entry:
    """One registered adapter."""

    name: str
    source: str  # Hub id, or the folder's public name
    folder: Path
    revision: str | None = None
    template: str = "alpaca"
    pinned: bool = False
    slot: int | None = None  # None: not in memory now
    users: int = 0  # running requests
    last_used: float = 0.0
    created: int = 0


class AdapterStore:
    """Registered adapters of one base, held in the slots of ``multi`` (see the module doc)."""

    def __init__(self, multi, base_id: str, max_adapters: int | None = None):
        self.multi, self.base_id, self.max_adapters = multi, base_id, max_adapters
        self.entries: dict[str, Entry] = {}
        self._lock = threading.RLock()
        self._skeleton = None
        self._free: list[int] = []
        for slot, src in enumerate(multi.sources, start=1):  # loaded with the model: held
            self.entries[src.name] = self._entry(src, pinned=True, slot=slot)
        self.loads = self.evictions = 0

    # -- registering ------------------------------------------------------------------------

    def add(self, source: AdapterSource, pinned: bool = False, load: bool = False) -> Entry:
        """Register (and with ``load`` hold now) an adapter; ModelError / AdapterMismatchError
        before any weight is read into the model when it does not fit this base."""
        if source.name == BASE or not source.name:
            raise ModelError(f"{source.name!r} cannot name an adapter (reserved)")
        check_bases([source], self.base_id)
        models.check_adapter_matches(self._meta(), source.folder, self.base_id)
        with self._lock:
            if source.name in self.entries:
                raise ModelError(f"an adapter named {source.name!r} is already served: unload "
                                 "it first or pick another name")
            entry = self.entries[source.name] = self._entry(source, pinned=pinned)
        if load:
            with self.use(source.name):
                pass
        log.info("adapter %s added (%s)", source.name, entry.source)
        return entry

    def remove(self, name: str) -> None:
        """Forget an adapter (its slot is freed once its running requests end)."""
        with self._lock:
            entry = self.get(name)
            del self.entries[name]
            if entry.slot is not None and entry.users == 0:
                self._evict(entry)

    def get(self, name: str) -> Entry:
        entry = self.entries.get(name)
        if entry is None:
            raise UnknownModel(f"the model {name!r} does not exist: GET /v1/models lists "
                               "the base and every adapter served here")
        return entry

    def held(self) -> list[str]:
        return [e.name for e in self.entries.values() if e.slot is not None]

    # -- using ------------------------------------------------------------------------------

    def acquire(self, name: str) -> Entry | None:
        """Hold ``name`` for one request (loading it if needed); None for the base. Its slot is
        ``entry.slot``; pair with :meth:`release`."""
        if name == BASE:
            return None
        with self._lock:
            entry = self.get(name)
            if entry.slot is None:
                self._load(entry)
            entry.users += 1
            entry.last_used = time.monotonic()
            return entry

    def release(self, entry: Entry | None) -> None:
        if entry is None:
            return
        with self._lock:
            entry.users -= 1
            if entry.users == 0 and self.entries.get(entry.name) is not entry \
                    and entry.slot is not None:
                self._evict(entry)  # removed while it was answering

    @contextlib.contextmanager
    def use(self, name: str):
        entry = self.acquire(name)
        try:
            yield entry.slot if entry else 0
        finally:
            self.release(entry)

    # -- slots --------------------------------------------------------------------------------

    def _load(self, entry: Entry) -> None:
        vectors = ia3_vectors(entry.folder)  # ModelError for a missing/corrupt file
        if self.max_adapters is not None:
            while len(self.held()) >= self.max_adapters:
                victim = min((e for e in self.entries.values() if e.slot is not None
                              and not e.pinned and e.users == 0),
                             key=lambda e: e.last_used, default=None)
                if victim is None:
                    raise ModelError(f"all {self.max_adapters} adapter slots (--max-adapters) "
                                     "are pinned or in use: retry later")
                self._evict(victim)
        slot = self._free.pop() if self._free else self.multi.capacity + 1
        if slot > self.multi.capacity:
            self.multi.reserve(max(slot, 2 * self.multi.capacity))
            self._free.extend(range(self.multi.capacity, slot, -1))
        self.multi.clear_slot(slot)
        self.multi.write_slot(slot, vectors)
        entry.slot = slot
        self.loads += 1
        log.info("adapter %s held in slot %d", entry.name, slot)

    def _evict(self, entry: Entry) -> None:
        self.multi.clear_slot(entry.slot)
        self._free.append(entry.slot)
        entry.slot = None
        self.evictions += 1
        log.info("adapter %s evicted (least recently used)", entry.name)

    def _entry(self, src: AdapterSource, pinned: bool, slot: int | None = None) -> Entry:
        local = Path(src.source).expanduser().is_dir()
        return Entry(name=src.name, source=public_name(src.source) if local else src.source,
                     folder=Path(src.folder), revision=src.revision,
                     template=adapter_folder.template(Path(src.folder)), pinned=pinned, slot=slot,
                     created=int(time.time()))

    def _meta(self):
        if self._skeleton is None:
            from a3duck.multi_adapter import meta_model

            self._skeleton = meta_model(models.resolve_base_model(self.base_id))
        return self._skeleton


def adapters_in(folder: Path) -> list[AdapterSource]:
    """Every sub-folder of ``folder`` holding an adapter, named after the sub-folder."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ModelError(f"--adapters {folder}: no such folder")
    return [AdapterSource(sub.name, str(sub), sub.resolve()) for sub in sorted(folder.iterdir())
            if (sub / adapter_folder.ADAPTER_CONFIG).is_file()]
