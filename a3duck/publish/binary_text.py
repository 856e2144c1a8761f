"""The text hidden in staged binary files, so that the secret and local-path checks see it too:
PNG text chunks (``tEXt``, ``zTXt``, ``iTXt``: matplotlib writes ``Software`` there, and any
tool may write a command line, a path or a token) and the ``__metadata__`` strings of a
safetensors header. Only these small parts are read, never a whole weights file."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_HEADER = 100 << 20  # safetensors' own limit on its JSON header (100 MB)


def embedded_text(path: Path) -> str | None:
    """The text a binary file carries, or None for a file of another kind."""
    if path.suffix.lower() == ".png":
        return png_text(path)
    if path.suffix == ".safetensors":
        return safetensors_metadata(path)
    return None


def png_text(path: Path) -> str:
    """Every text chunk's keyword and value, one per line."""
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        return ""
    out, at = [], len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        at += 12 + length
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            out.append(_chunk_text(kind, body))
        if kind == b"IEND":
            break
    return "\n".join(out)


def _chunk_text(kind: bytes, body: bytes) -> str:
    key, _, rest = body.partition(b"\0")
    try:
        if kind == b"zTXt":
            rest = zlib.decompress(rest[1:])  # one compression-method byte
        elif kind == b"iTXt":
            compressed, rest = rest[0], rest[2:]  # flag, method
            _lang, _, rest = rest.partition(b"\0")
            _translated, _, rest = rest.partition(b"\0")
            rest = zlib.decompress(rest) if compressed else rest
    except (zlib.error, IndexError):
        return key.decode("latin-1")  # unreadable text: its keyword is all there is
    return f"{key.decode('latin-1')}: {rest.decode('utf-8', 'replace')}"


def safetensors_metadata(path: Path) -> str:
    """The header's ``__metadata__`` (string to string), one ``key: value`` per line."""
    with path.open("rb") as fh:
        size = struct.unpack("<Q", fh.read(8) or b"\0" * 8)[0]
        if not 0 < size <= MAX_HEADER:
            return ""
        try:
            header = json.loads(fh.read(size))
        except ValueError:
            return ""
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return "\n".join(f"{k}: {v}" for k, v in (meta or {}).items())
