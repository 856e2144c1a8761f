"""A cap on request bodies for everything `a3duck serve` answers (the Space and /v1).

The probe sent the Space 64 MB bodies: it read each one, kept the memory (RSS 1.4 → 2.8 GB after
five), answered ``{"error": null}`` and wrote each payload into its log. This ASGI middleware
(installed through Gradio's ``app_kwargs``: no patching) answers HTTP 413 before the body is
read when ``Content-Length`` says it is too large, and stops reading a chunked body the moment
it passes the cap; nothing of the body is kept or logged (one line with its size).
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger(__name__)

# 1 MiB: a full 4,096-token Llama-2 context is ~20 KB of JSON, a long chat history a few
# hundred KB; nothing the Space or /v1 accepts needs more (the Space takes no file uploads).
MAX_BODY_BYTES = 1 << 20


class BodyLimit:
    """ASGI middleware: HTTP 413 (OpenAI's error shape) for bodies over ``max_bytes``."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send, int(declared), scope)
        # A chunked body: once past the cap the app is told the client left (it stops reading)
        # and whatever it answers is dropped for the 413.
        seen, over, started = 0, False, False

        async def counted():
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                over = seen > self.max_bytes
                if over:
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message):
            nonlocal started
            if not over:
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over:
                raise
        if over and not started:  # (an answer already begun cannot become a 413)
            await self._refuse(send, seen, scope)

    async def _refuse(self, send, size: int, scope) -> None:
        log.warning("refused a %s request body of %s bytes to %s (limit %s bytes)",
                    scope.get("method", "?"), f"{size:,}", scope.get("path", "?"),
                    f"{self.max_bytes:,}")
        body = json.dumps({"error": {
            "message": f"the request body is larger than {self.max_bytes:,} bytes",
            "type": "invalid_request_error", "param": None, "code": "request_too_large"}})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body.encode()})


def middleware(max_bytes: int = MAX_BODY_BYTES):
    """The Starlette ``Middleware`` entry for FastAPI's (and Gradio's ``app_kwargs``)
    ``middleware`` list."""
    from starlette.middleware import Middleware

    return Middleware(BodyLimit, max_bytes=max_bytes)
