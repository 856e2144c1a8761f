"""OpenAI request bodies -> checked settings and prompt token ids (InputError names the field).

Defaults are OpenAI's: temperature 1, top_p 1, no stop, max_tokens the room left in the context
(chat) or 16 (completions). Fields a3duck does not implement are refused when they would change
the answer (penalties, logit_bias, n > 1, tools), so nothing is silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from a3duck.errors import InputError
from a3duck.serving.request import Sampling

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_TOP_LOGPROBS = 20


class ParamError(InputError):
    """A bad field of the request body (``param`` names it)."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Params:
    model: str
    sampling: Sampling
    max_tokens: int | None
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool
    logprobs: int | None
    echo: bool


def _number(body, name, kind, low, high, default):
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            kind is int and not float(value).is_integer()):
        raise ParamError(name, f"{name} must be {'an integer' if kind is int else 'a number'}, "
                         f"got {value!r}")
    if not (low <= value <= high):
        raise ParamError(name, f"{name} must be between {low} and {high}, got {value}")
    return kind(value)


def _refuse_unsupported(body: dict) -> None:
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name) not in (None, 0, 0.0):
            raise ParamError(name, f"{name} is not supported by this server (leave it at 0)")
    if body.get("logit_bias"):
        raise ParamError("logit_bias", "logit_bias is not supported by this server")
    if body.get("n") not in (None, 1):
        raise ParamError("n", "n must be 1 on this server (one choice per request)")
    if body.get("best_of") not in (None, 1):
        raise ParamError("best_of", "best_of must be 1 on this server")
    if body.get("tools") or body.get("functions"):
        raise ParamError("tools", "tools / function calling are not supported by this server")


def parse_common(body: dict, chat: bool) -> Params:
    """The settings shared by chat and completions, checked."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ParamError("model", "model is required: an id from GET /v1/models")
    _refuse_unsupported(body)
    limit_name = "max_completion_tokens" if body.get("max_completion_tokens") is not None \
        else "max_tokens"
    max_tokens = _number(body, limit_name, int, 1, 1 << 30, None)
    stop = body.get("stop")
    stop = [stop] if isinstance(stop, str) else stop or []
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) for s in stop):
        raise ParamError("stop", "stop must be a string or a list of at most 4 strings")
    seed = _number(body, "seed", int, -(1 << 63), (1 << 63) - 1, None)
    sampling = Sampling(temperature=_number(body, "temperature", float, 0.0, 2.0, 1.0),
                        top_p=_number(body, "top_p", float, 0.0, 1.0, 1.0),
                        top_k=_number(body, "top_k", int, 0, 1 << 20, 0),
                        seed=None if seed is None else seed % (1 << 63))
    if sampling.top_p == 0:
        sampling = Sampling(sampling.temperature, 1e-9, sampling.top_k, sampling.seed)
    if chat:
        logprobs = _number(body, "top_logprobs", int, 0, MAX_TOP_LOGPROBS, 0) \
            if body.get("logprobs") else None
    else:
        logprobs = _number(body, "logprobs", int, 0, 5, None)
    options = body.get("stream_options") or {}
    return Params(model=model, sampling=sampling, max_tokens=max_tokens,
                  stop=tuple(s for s in stop if s), stream=bool(body.get("stream")),
                  include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
                  logprobs=logprobs, echo=bool(body.get("echo")) and not chat)


def _content(message: dict, i: int) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        if all(isinstance(p, str) for p in parts) and all(
                p.get("type") == "text" for p in content):
            return "".join(parts)
    raise ParamError(f"messages[{i}].content", "message content must be text (a string or "
                     "text parts): images and audio are not supported")


def chat_prompt(service, name: str, body: dict) -> tuple[list[int], tuple[str, ...]]:
    """Prompt ids of ``messages`` rendered with the adapter's recorded template, and the
    template's end-of-turn markers (alpaca's ``### Instruction`` ...)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ParamError("messages", "messages must be a non-empty list")
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ParamError(f"messages[{i}].role", "each message needs a role: system, "
                             "developer, user or assistant")
        turns.append({"role": ROLES[m["role"]], "content": _content(m, i)})
    if turns[-1]["role"] != "user":
        raise ParamError("messages", "the last message must be the user's")
    template = service.template(name)
    text = template.render_messages(turns)
    ids = service.tokenizer(text, add_special_tokens=template.add_special_tokens)["input_ids"]
    return ids, tuple(template.stop_markers)


def completion_prompt(service, body: dict) -> tuple[list[int], tuple[str, ...]]:
    """Prompt ids of ``prompt``: a string (tokenised as the model's own text, BOS included) or
    a list of token ids; one prompt per request."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise ParamError("prompt", "prompt must not be empty")
        return service.tokenizer(prompt)["input_ids"], ()
    vocab = len(service.tokenizer)
    if isinstance(prompt, list) and prompt and all(
            isinstance(t, int) and not isinstance(t, bool) and 0 <= t < vocab for t in prompt):
        return list(prompt), ()
    raise ParamError("prompt", "prompt must be a string or a list of token ids (one prompt "
                     "per request)")
