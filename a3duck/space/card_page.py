"""A served local adapter's model card as a page of the Space, at ``/card/NAME``: the About tab
links to it as it links a Hub adapter to its page on the Hub. Only the card (``README.md``, as
`a3duck card` writes it) of an adapter being served is sent, looked up by the adapter's name,
never by a path taken from the request."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote

from a3duck import adapter_folder

PREFIX = "/card"


def card_file(folder: Path | None, local: bool) -> Path | None:
    """The card `a3duck card` wrote into a local adapter folder; None for a Hub adapter (its
    Hub page is its card) and while the folder holds no card or only the placeholder PEFT's
    ``save_pretrained`` writes ("Model Card for Model ID": it says nothing of this adapter)."""
    path = Path(folder) / adapter_folder.CARD if local and folder else None
    if path is None or not path.is_file():
        return None
    from huggingface_hub import ModelCard

    try:
        tags = ModelCard(path.read_text(encoding="utf-8")).data.tags or []
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return path if adapter_folder.CARD_TAG in tags else None


def card_href(name: str) -> str:
    """The page's address for adapter ``name`` (relative: it works behind any host name)."""
    return f"{PREFIX}/{quote(name, safe='')}"


def render(text: str, title: str) -> str:
    """The card as one HTML page: its YAML metadata is left out (huggingface_hub's ModelCard
    splits it off) and so are HTML comments (notes to whoever edits the file, which the Hub
    hides too); Markdown is rendered with raw HTML disabled (a card quotes data names)."""
    from huggingface_hub import ModelCard
    from markdown_it import MarkdownIt

    markdown = re.sub(r"<!--.*?-->", "", ModelCard(text).text, flags=re.DOTALL)
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            "</title><style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem "
            "auto;padding:0 1rem;line-height:1.5}table{border-collapse:collapse}td,th{border:"
            "1px solid #ccc;padding:.2rem .5rem}code,pre{background:#f4f4f4}</style></head>"
            f"<body>{body}</body></html>")


def card_routes(cards: dict[str, Path]) -> list:
    """A FastAPI router serving ``cards`` (adapter name -> its card file), read at each request
    so that a card rewritten by `a3duck card` shows without a restart; [] when there are none."""
    if not cards:
        return []
    from fastapi import APIRouter
    from fastapi.responses import HTMLResponse, PlainTextResponse

    router = APIRouter(prefix=PREFIX)

    @router.get("/{name}")
    async def card(name: str):
        path = cards.get(name)
        if path is None:
            return PlainTextResponse(f"no model card is served for {name!r}", status_code=404)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:  # the reason, not the local path
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            return PlainTextResponse(f"the model card of {name!r} cannot be read ({reason})",
                                     status_code=500)
        return HTMLResponse(render(text, f"{name}: model card"))

    return router.routes
