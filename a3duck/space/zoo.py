"""The Space's adapter zoo: which adapters to serve, their display names, what About shows.

``--adapter`` may be given several times and ``A3DUCK_ADAPTER`` may hold a comma-separated list.
Each adapter gets a unique display name: ``NAME=PATH_OR_ID`` sets it; otherwise a Hub id is its
own name, and a local folder is named by its folder name — or, for a folder called ``adapter``
(what ``a3duck train`` writes), by its run folder's name — with ``-2``, ``-3``... added where
names collide. ``base`` is reserved for the base model. Visitors choose among exactly these
names; nothing a visitor sends can make the Space load anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from a3duck.errors import ConfigError
from a3duck.multi_adapter import BASE

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,95}$")


def adapter_specs(value: str | list[str] | None) -> list[str]:
    """The adapters asked for: flags (repeated) or a comma-separated list; 'none' = no adapter."""
    parts = value if isinstance(value, list) else str(value or "").split(",")
    specs = [p.strip() for item in parts for p in str(item).split(",")]
    if value and not (len(specs) == 1 and not specs[0]) and not all(specs):
        from a3duck.errors import ConfigError  # ",, ," would silently serve the base alone

        raise ConfigError(f"the adapter list {', '.join(map(repr, parts))} has an empty name: "
                          "give adapter folders or Hub ids separated by commas (A3DUCK_ADAPTER "
                          "or --adapter), or 'none' for the base alone")
    return [s for s in specs if s and s.lower() != "none"]


def display_names(specs: list[str]) -> list[tuple[str, str]]:
    """``[(display name, source)]`` for ``NAME=SOURCE`` / Hub id / local folder specs."""
    out, used = [], {BASE}
    for spec in specs:
        name, sep, source = spec.partition("=")
        if sep and name and NAME_RE.match(name):
            if name in used:
                raise ConfigError(f"adapter name {name!r} is used twice (or is reserved): "
                                  "give each NAME=... its own name")
        else:
            source, name = spec, default_name(spec)
            base, n = name, 2
            while name in used:
                name, n = f"{base}-{n}", n + 1
        used.add(name)
        out.append((name, source))
    return out


def default_name(source: str) -> str:
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return source  # a Hub id names itself
    folder = folder.resolve()
    return folder.parent.name if folder.name == "adapter" and folder.parent.name else folder.name


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

    @property
    def card_url(self) -> str | None:
        return None if self.local else f"https://huggingface.co/{self.source}"


def adapter_info(name: str, source: str, folder: Path, revision: str | None) -> AdapterInfo:
    """Facts of an adapter read from its folder (small files only; no model weights)."""
    from a3duck.config import CONFIG_FILENAME, MIX_KEY
    from a3duck.files import public_name
    from a3duck.models import adapter_template
    from a3duck.multi_adapter import read_vectors
    from a3duck.space.runtime import ia3_plot

    local = Path(source).expanduser().is_dir()
    mix = None
    if (folder / CONFIG_FILENAME).is_file():
        import yaml

        raw = yaml.safe_load((folder / CONFIG_FILENAME).read_text(encoding="utf-8")) or {}
        mix = [public_name(str(s.get("adapter")))
               for s in (raw.get(MIX_KEY) or {}).get("sources", [])]
    return AdapterInfo(
        name=name, source=public_name(source) if local else source, revision=revision,
        local=local, params=sum(v.numel() for v in read_vectors(folder).values()),
        template=adapter_template(str(folder)),
        ia3_plot=ia3_plot(str(folder)), mixed_from=mix or None)


def about_lines(adapters: list[AdapterInfo]) -> list[str]:
    """One Markdown bullet per adapter for the About tab."""
    lines = []
    for a in adapters:
        where = f"[{a.source}]({a.card_url})" if a.card_url else f"`{a.source}` (local folder)"
        rev = f" @ `{a.revision}`" if a.revision else ""
        mix = f" · a mix of {', '.join(a.mixed_from)}" if a.mixed_from else ""
        lines.append(f"- **`{a.name}`**: {where}{rev} · {a.params:,} IA3 parameters · "
                     f"template `{a.template}`{mix}")
    return lines


def load_zoo(config, dtype, device):
    """``(MultiAdapterModel, tokenizer, [AdapterInfo])`` for a ServeConfig: every adapter on one
    base (checked before loading), or with ``--merge`` the one adapter folded into the weights."""
    from a3duck import models
    from a3duck.multi_adapter import AdapterSource, MultiAdapterModel, load_multi

    specs = display_names(adapter_specs(config.adapter))
    if len(specs) > 1 and (config.merge or config.revision):
        raise ConfigError("--merge and --revision serve one adapter; give one --adapter")
    sources = [AdapterSource(name, src, models.resolve_adapter(src, config.revision),
                             config.revision) for name, src in specs]
    adapters = [adapter_info(s.name, s.source, s.folder, s.revision) for s in sources]
    if config.merge and sources:
        model, tokenizer = models.load(config.base_model, sources[0].source, dtype=dtype,
                                       device=device, revision=config.revision)
        return MultiAdapterModel(model.merge_and_unload().eval()), tokenizer, adapters
    multi, tokenizer = load_multi(config.base_model, sources, dtype=dtype, device=device)
    return multi, tokenizer, adapters
