"""The OpenAI-compatible HTTP API at ``/v1`` (FastAPI routes served next to the Space).

``GET /v1/models``, ``POST /v1/chat/completions`` (streamed as server-sent events, one chunk per
decoded piece, or whole), ``POST /v1/completions`` (with ``logprobs`` and ``echo``). The
request's sampling settings and nothing hidden: temperature (default 1), top_p (default 1),
seed, max_tokens, stop; ``top_k`` is accepted as an extension (vLLM's). Settings a3duck does not
implement (penalties, logit_bias, n > 1, tools) are refused with 400, never ignored.
Errors are OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``: 400 bad request,
401 wrong key, 404 unknown model, 429 over capacity. With an API key (``--api-key`` /
``A3DUCK_API_KEY``) every route wants ``Authorization: Bearer KEY`` (compared in constant time,
never logged), and ``/v1/admin/adapters`` loads (POST) or unloads (DELETE) adapters.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid

from fastapi import Request  # at module level: the routes' annotations are resolved here

from a3duck.errors import A3DuckError, AdapterMismatchError, InputError, ModelError
from a3duck.serving.engine import Overloaded
from a3duck.serving.params import chat_prompt, completion_prompt, parse_common
from a3duck.serving.request import Finished, Piece
from a3duck.serving.store import UnknownModel

log = logging.getLogger(__name__)


def error(status: int, message: str, kind: str = "invalid_request_error", param=None,
          code=None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "param": param,
                                   "code": code}}, status_code=status)


def error_for(exc: BaseException):
    """The OpenAI-shaped response of an exception (unexpected ones: 500, no traceback sent)."""
    if isinstance(exc, UnknownModel):
        return error(404, str(exc), param="model", code="model_not_found")
    if isinstance(exc, Overloaded):
        return error(429, str(exc), kind="rate_limit_error", code="over_capacity")
    if isinstance(exc, (InputError, AdapterMismatchError)):
        return error(400, str(exc), param=getattr(exc, "param", None))
    if isinstance(exc, (ModelError, A3DuckError)):
        return error(400, str(exc))
    log.exception("request failed")
    return error(500, f"internal error ({type(exc).__name__}); the server keeps serving",
                 kind="server_error")


def build_routes(service) -> list:
    """The ``/v1`` routes of ``service`` (a :class:`a3duck.serving.service.Service`)."""
    from fastapi import APIRouter

    router = APIRouter(prefix="/v1")
    key = service.config.api_key

    async def body_of(http: Request) -> dict:
        try:
            body = await http.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InputError("the request body must be a JSON object")
        return body

    async def guarded(http: Request, work):
        """Check the key, read the body (POST), run ``work``; every failure in OpenAI's shape."""
        if key and not hmac.compare_digest(http.headers.get("authorization", "").encode(),
                                           f"Bearer {key}".encode()):
            return error(401, "Incorrect API key provided (send Authorization: Bearer KEY)",
                         code="invalid_api_key")
        try:
            return await work(await body_of(http) if http.method == "POST" else None)
        except Exception as exc:  # noqa: BLE001 - every failure answers in OpenAI's shape
            return error_for(exc)

    @router.get("/models")
    async def list_models(http: Request):
        async def work(_):
            return {"object": "list", "data": service.models()}
        return await guarded(http, work)

    @router.post("/chat/completions")
    async def chat(http: Request):
        return await guarded(http, lambda body: answer(service, body, chat=True, http=http))

    @router.post("/completions")
    async def completions(http: Request):
        return await guarded(http, lambda body: answer(service, body, chat=False, http=http))

    if key:
        @router.post("/admin/adapters")
        async def load_adapter(http: Request):
            async def work(body):
                from starlette.concurrency import run_in_threadpool

                return await run_in_threadpool(
                    service.load_adapter, str(body.get("name") or ""), body.get("path"),
                    body.get("hub_id"), body.get("revision"))
            return await guarded(http, work)

        @router.delete("/admin/adapters/{name:path}")
        async def unload_adapter(http: Request, name: str):
            async def work(_):
                service.unload_adapter(name)
                return {"id": name, "object": "model", "deleted": True}
            return await guarded(http, work)

    return router.routes


DISCONNECT_POLL_S = 0.25  # how often a whole (non-streamed) answer's client is checked


async def answer(service, body: dict, chat: bool, http: Request | None = None):
    """One completion: parse, queue on the engine, then stream chunks or return the whole. A
    client that leaves (streamed or not) cancels it: its row leaves the batch at the next step."""
    from starlette.concurrency import run_in_threadpool

    p = parse_common(body, chat)
    name = service.resolve(p.model)
    prompt_ids, stops = (chat_prompt(service, name, body) if chat
                         else completion_prompt(service, body))
    max_tokens = service.check_room(len(prompt_ids), p.max_tokens, None if chat else 16)
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def sink(event):
        loop.call_soon_threadsafe(events.put_nowait, event)

    request = await run_in_threadpool(
        service.start, name, prompt_ids, p.sampling, max_tokens, [*p.stop, *stops], sink,
        logprobs=p.logprobs, echo=p.echo)
    meta = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}",
            "created": int(time.time()), "model": p.model}
    if p.stream:
        from fastapi.responses import StreamingResponse

        return StreamingResponse(sse(request, events, meta, chat, p.include_usage),
                                 media_type="text/event-stream")
    end = await _whole_events(request, events, http)
    if end is None:  # the client left; nobody reads this answer
        return error(499, "the client closed the request", code="client_closed_request")
    pieces, end = end
    if end.error is not None:
        return error_for(end.error)
    return whole(pieces, end, meta, chat, p)


async def _whole_events(request, events: asyncio.Queue, http: Request | None):
    """(pieces, Finished) of a non-streamed answer, or None when its client left first (checked
    every DISCONNECT_POLL_S, however often pieces arrive)."""
    loop = asyncio.get_running_loop()
    pieces, next_check = [], loop.time() + DISCONNECT_POLL_S
    try:
        while True:
            try:
                event = await asyncio.wait_for(events.get(), max(0.0, next_check - loop.time()))
            except TimeoutError:
                event = None
            if loop.time() >= next_check:
                if http is not None and await http.is_disconnected():
                    _client_left(request)
                    return None
                next_check = loop.time() + DISCONNECT_POLL_S
            if isinstance(event, Finished):
                return pieces, event
            if event is not None:
                pieces.append(event)
    finally:
        request.cancel()


def _client_left(request) -> None:
    log.info("a client left after %d of its answer's tokens: request cancelled",
             len(request.generated))


async def sse(request, events, meta, chat: bool, include_usage: bool):
    """Server-sent events: one chunk per decoded piece, the finish reason, then [DONE]. A
    client that leaves cancels the request (its row leaves the batch at the next step)."""
    from a3duck.serving.chunks import chunk, usage_of

    try:
        if chat:
            yield _data(chunk(meta, chat, {"role": "assistant", "content": ""}))
        while True:
            event = await events.get()
            if isinstance(event, Piece):
                yield _data(chunk(meta, chat, event, logprobs=request.logprobs is not None))
                continue
            if event.error is not None:
                yield _data({"error": {"message": str(event.error), "type": "server_error",
                                       "param": None, "code": None}})
            else:
                yield _data(chunk(meta, chat, None, finish_reason=event.reason))
                if include_usage:
                    yield _data({**chunk(meta, chat, None), "choices": [],
                                 "usage": usage_of(event)})
            yield "data: [DONE]\n\n"
            return
    finally:
        if not request.finished:
            _client_left(request)
        request.cancel()


def whole(pieces, end, meta, chat: bool, p) -> dict:
    from a3duck.serving.chunks import whole_response

    return whole_response(pieces, end, meta, chat, p)


def _data(obj) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"
