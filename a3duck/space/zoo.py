"""The Space's adapter zoo: which adapters to serve, their display names, what About shows.

``--adapter`` may be given several times and ``A3DUCK_ADAPTER`` may hold a comma-separated list.
Each adapter gets a unique display name by the one rule of :mod:`a3duck.adapter_names`
(``NAME=PATH_OR_ID``, a Hub id, or the run folder's name). Visitors choose among exactly these
names; nothing a visitor sends can make the Space load anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from a3duck.adapter_names import display_names
from a3duck.errors import ConfigError
from a3duck.space.card_page import card_file, card_href

log = logging.getLogger(__name__)


def adapter_specs(value: str | list[str] | None) -> list[str]:
    """The adapters asked for: flags (repeated) or a comma-separated list; 'none' = no adapter."""
    parts = value if isinstance(value, list) else str(value or "").split(",")
    specs = [p.strip() for item in parts for p in str(item).split(",")]
    if value and not (len(specs) == 1 and not specs[0]) and not all(specs):
        # ",, ," would silently serve the base alone
        raise ConfigError(f"the adapter list {', '.join(map(repr, parts))} has an empty name: "
                          "give adapter folders or Hub ids separated by commas (A3DUCK_ADAPTER "
                          "or --adapter), or 'none' for the base alone")
    return [s for s in specs if s and s.lower() != "none"]


@dataclass
class AdapterInfo:
    """One served adapter, as the About tab shows it."""

    name: str
    source: str  # a Hub id, or a local folder's name (no local paths on screen)
    revision: str | None
    local: bool
    params: int
    template: str
    ia3_plot: str | None = None
    mixed_from: list[str] | None = None  # a3duck mix sources
    card: Path | None = None  # a local adapter's model card file, served at card_url

    @property
    def card_url(self) -> str | None:
        """The Hub page of a Hub adapter; the Space's own page for a local card; else None."""
        if not self.local:
            return f"https://huggingface.co/{self.source}"
        return card_href(self.name) if self.card else None


def adapter_info(name: str, source: str, folder: Path, revision: str | None) -> AdapterInfo:
    """Facts of an adapter read from its folder (small files only; no model weights)."""
    from a3duck import adapter_folder
    from a3duck.config import MIX_KEY
    from a3duck.files import public_name

    local = Path(source).expanduser().is_dir()
    raw = adapter_folder.train_record(folder) or {}
    mix = [public_name(str(s.get("adapter")))
           for s in (raw.get(MIX_KEY) or {}).get("sources", [])]
    return AdapterInfo(
        name=name, source=public_name(source) if local else source, revision=revision,
        local=local, params=sum(v.numel() for v in adapter_folder.ia3_vectors(folder).values()),
        template=adapter_folder.template(folder),
        ia3_plot=ia3_plot(str(folder)), mixed_from=mix or None, card=card_file(folder, local))


def ia3_plot(adapter: str | None, revision: str | None = None) -> str | None:
    """The adapter's IA3 heatmap: the one shipped in its plots/ folder, else drawn now into a
    temporary folder (reads only the small adapter file). None without an adapter."""
    if not adapter:
        return None
    from a3duck import adapter_folder
    from a3duck.inspection import inspect_adapter
    from a3duck.scratch import process_folder

    folder = adapter_folder.resolve(adapter, revision)
    shipped = adapter_folder.shipped_heatmap(folder)
    if shipped:
        return str(shipped)
    try:
        out = process_folder("plots")  # removed at exit: no litter in the temporary folder
        inspect_adapter(folder, out)
    except Exception as exc:  # noqa: BLE001 - the About panel must not stop the Space
        log.warning("could not draw the IA3 plot: %s", exc)
        return None
    return str(out / adapter_folder.HEATMAP)



def about_lines(adapters: list[AdapterInfo]) -> list[str]:
    """One Markdown bullet per adapter for the About tab."""
    lines = []
    for a in adapters:
        where = (f"[{a.source}]({a.card_url})" if not a.local else f"`{a.source}` (local "
                 "folder" + (f", [model card]({a.card_url})" if a.card_url else "") + ")")
        rev = f" @ `{a.revision}`" if a.revision else ""
        mix = f" · a mix of {', '.join(a.mixed_from)}" if a.mixed_from else ""
        lines.append(f"- **`{a.name}`**: {where}{rev} · {a.params:,} IA3 parameters · "
                     f"template `{a.template}`{mix}")
    return lines


def load_zoo(config, dtype, device):
    """``(MultiAdapterModel, tokenizer, [AdapterInfo], unavailable)`` for a ServeConfig: every
    adapter on one base (checked before loading), or with ``--merge`` the one adapter folded
    into the weights. ``unavailable`` lists ``(name, reason)`` of the Hub adapters of a zoo that
    could not be fetched (offline, removed): the others are served and the page names them.
    A local folder that is missing, or a zoo where nothing can be fetched, raises ModelError."""
    from a3duck import models
    from a3duck.multi_adapter import MultiAdapterModel, load_multi

    specs = display_names(adapter_specs(config.adapter))
    if len(specs) > 1 and (config.merge or config.revision):
        raise ConfigError("--merge and --revision serve one adapter; give one --adapter")
    sources, unavailable = _fetch_sources(specs, config.revision)
    adapters = [adapter_info(s.name, s.source, s.folder, s.revision) for s in sources]
    if config.merge and sources:
        model, tokenizer = models.load(config.base_model, sources[0].source, dtype=dtype,
                                       device=device, revision=config.revision)
        return MultiAdapterModel(model.merge_and_unload().eval()), tokenizer, adapters, []
    multi, tokenizer = load_multi(config.base_model, sources, dtype=dtype, device=device)
    return multi, tokenizer, adapters, unavailable


def _fetch_sources(specs: list[tuple[str, str]], revision: str | None):
    """(AdapterSources, [(name, reason)] of the Hub adapters that could not be fetched)."""
    from a3duck import adapter_folder
    from a3duck.errors import ModelError
    from a3duck.hub_access import looks_like_path
    from a3duck.multi_adapter import AdapterSource

    sources, unavailable = [], []
    for name, src in specs:
        try:
            folder = adapter_folder.resolve(src, revision)
        except ModelError as exc:
            if len(specs) == 1 or looks_like_path(src):
                raise  # one adapter, or a local folder: nothing to serve in its place
            unavailable.append((name, str(exc)))
            continue
        sources.append(AdapterSource(name, src, folder, revision))
    if unavailable and not sources:
        raise ModelError("none of the adapters could be loaded: " + "; ".join(
            reason for _, reason in unavailable))
    for name, reason in unavailable:
        log.warning("not serving adapter %s: %s", name, reason)
    return sources, unavailable
