"""OpenAI response bodies: whole completions, streamed chunks, usage and logprobs."""

from __future__ import annotations

import math


def usage_of(end) -> dict:
    return {"prompt_tokens": end.prompt_tokens, "completion_tokens": end.completion_tokens,
            "total_tokens": end.prompt_tokens + end.completion_tokens}


def _lp(value: float):
    return None if math.isnan(value) else value


def chat_logprobs(tokens) -> dict:
    """Chat ``logprobs``: one entry per generated token with its top alternatives."""
    return {"content": [{"token": t.text, "logprob": t.logprob,
                         "bytes": list(t.text.encode("utf-8")),
                         "top_logprobs": [{"token": s, "logprob": v,
                                           "bytes": list(s.encode("utf-8"))}
                                          for s, v in t.top]} for t in tokens],
            "refusal": None}


def completion_logprobs(tokens, start: int = 0) -> dict:
    """Completions ``logprobs``: parallel lists, ``text_offset`` from ``start``."""
    offsets, at = [], start
    for t in tokens:
        offsets.append(at)
        at += len(t.text)
    return {"tokens": [t.text for t in tokens],
            "token_logprobs": [_lp(t.logprob) for t in tokens],
            "top_logprobs": [dict(t.top) if t.top else None for t in tokens],
            "text_offset": offsets}


def chunk(meta: dict, chat: bool, piece, finish_reason=None, logprobs: bool = False) -> dict:
    """One streamed chunk: a Piece, a dict delta (the role chunk) or None (the last)."""
    if chat:
        delta = piece if isinstance(piece, dict) else (
            {"content": piece.text} if piece is not None else {})
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        if logprobs and piece is not None and not isinstance(piece, dict):
            choice["logprobs"] = chat_logprobs(piece.tokens)
        kind = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": piece.text if piece is not None else "", "logprobs": None,
                  "finish_reason": finish_reason}
        if logprobs and piece is not None:
            choice["logprobs"] = completion_logprobs(piece.tokens)
        kind = "text_completion"
    return {**meta, "object": kind, "system_fingerprint": None, "choices": [choice]}


def whole_response(pieces, end, meta: dict, chat: bool, params) -> dict:
    """The non-streamed body of a finished request: the answer decoded in one piece (after
    the prompt's text with ``echo``)."""
    text = "".join(p.text for p in pieces)
    if end.text is not None:
        text = (pieces[0].text if params.echo and pieces else "") + end.text
    tokens = [t for p in pieces for t in p.tokens]
    choice = {"index": 0, "finish_reason": end.reason, "logprobs": None}
    if chat:
        choice["message"] = {"role": "assistant", "content": text, "refusal": None}
        if params.logprobs is not None:
            choice["logprobs"] = chat_logprobs(tokens)
        kind = "chat.completion"
    else:
        choice["text"] = text
        if params.logprobs is not None:
            choice["logprobs"] = completion_logprobs(tokens)
        kind = "text_completion"
    return {**meta, "object": kind, "system_fingerprint": None, "choices": [choice],
            "usage": usage_of(end)}
