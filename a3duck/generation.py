"""Streaming text generation for the Space: input checks, prompt building, stopping rules.

A request goes: ``check_message`` (reject what cannot be a prompt) -> ``build_chat_prompt``
(the adapter's instruction template, oldest turns dropped / the message trimmed to fit the
context window) -> ``stream_generate`` (``model.generate`` on a background thread feeding a
``TextIteratorStreamer``; stops at EOS and at the template's stop markers, never showing a
half-written marker). Nothing here knows about Gradio; errors are :class:`InputError`.
"""

from __future__ import annotations

import functools
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from a3duck.errors import A3DuckError
from a3duck.prompts import Template, truncate_at_stop

MAX_INPUT_CHARS = 20_000  # longer messages are refused before tokenising (cheap DoS guard)
ALLOWED_CONTROLS = {"\n", "\t", "\r"}


class InputError(A3DuckError):
    """A request the app cannot run as given; the message tells the visitor what to change."""


@dataclass(frozen=True)
class Limits:
    """Inclusive ranges of the generation settings (the UI sliders use the same numbers)."""

    max_new_tokens: tuple[int, int] = (1, 1024)
    temperature: tuple[float, float] = (0.0, 2.0)
    top_p: tuple[float, float] = (0.01, 1.0)
    top_k: tuple[int, int] = (0, 200)
    repetition_penalty: tuple[float, float] = (1.0, 2.0)


LIMITS = Limits()


@dataclass(frozen=True)
class Settings:
    """Sampling settings; ``temperature == 0`` means greedy decoding, ``top_k == 0`` means off."""

    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.1

    @classmethod
    def checked(cls, **values) -> Settings:
        """Build from untrusted values (API calls can send anything); InputError names the field."""
        clean = {}
        for name, raw in values.items():
            low, high = getattr(LIMITS, name)
            kind = type(low)
            try:
                number = kind(float(raw)) if kind is int else float(raw)
            except (TypeError, ValueError):
                raise InputError(f"{name} must be a number, got {raw!r}") from None
            if not low <= number <= high:
                raise InputError(f"{name} must be between {low} and {high}, got {raw}")
            clean[name] = number
        return cls(**clean)

    def generate_kwargs(self) -> dict:
        if self.temperature == 0:
            return {"max_new_tokens": self.max_new_tokens, "do_sample": False,
                    "repetition_penalty": self.repetition_penalty}
        return {"max_new_tokens": self.max_new_tokens, "do_sample": True,
                "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                "repetition_penalty": self.repetition_penalty}


def check_message(text, what: str = "message", max_chars: int = MAX_INPUT_CHARS) -> str:
    """Return ``text`` without stray control characters; InputError for what cannot be used."""
    if not isinstance(text, str):
        raise InputError(f"the {what} must be text, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"the {what} is not valid UTF-8 text (it contains a lone surrogate); "
                         "paste it again as plain text") from None
    if len(text) > max_chars:
        raise InputError(f"the {what} is too long: {len(text):,} characters, the limit is "
                         f"{max_chars:,}. Shorten it and try again.")
    # Control characters (NUL, escape sequences, ...) carry no meaning for the model.
    text = "".join(c for c in text
                   if c in ALLOWED_CONTROLS or unicodedata.category(c) not in ("Cc", "Cs"))
    if not text.strip():
        raise InputError(f"the {what} is empty: type some text first")
    return text


def message_text(content) -> str:
    """The text of a Gradio chat message (a string, or openai-style content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, (list, tuple)):
        return "".join(message_text(part) for part in content)
    return ""


@dataclass
class ChatPrompt:
    """The prompt to send, its token ids and what was cut to fit (for the visible warning)."""

    text: str
    input_ids: list[int]
    dropped_turns: int = 0
    trimmed_tokens: int = 0

    @property
    def warning(self) -> str | None:
        parts = []
        if self.dropped_turns:
            parts.append(f"{self.dropped_turns} earlier turn(s) left out")
        if self.trimmed_tokens:
            parts.append(f"the first {self.trimmed_tokens} token(s) of your message cut")
        if not parts:
            return None
        return "Input too long for the context window: " + " and ".join(parts) + "."


def pair_history(history: Sequence[dict]) -> list[tuple[str, str]]:
    """(user, assistant) pairs from Gradio's openai-style history; unanswered turns are skipped."""
    pairs, user = [], None
    for msg in history or []:
        role, text = msg.get("role"), message_text(msg.get("content"))
        if role == "user":
            user = text
        elif role == "assistant" and user is not None:
            pairs.append((user, text))
            user = None
    return pairs


def build_chat_prompt(template: Template, tokenizer, message: str, history=(),
                      budget: int = 4096) -> ChatPrompt:
    """Render earlier turns + the new message with ``template`` within ``budget`` tokens.

    Each turn is rendered exactly as the adapter was trained (one template per turn). Oldest
    turns go first; if the message alone is too long, its beginning is cut.
    """
    turns = [template.render(u) + a.strip() + "\n\n" for u, a in pair_history(history)]
    current = template.render(message)
    dropped = 0
    while True:
        text = "".join(turns[dropped:]) + current
        ids = tokenizer(text)["input_ids"]
        if len(ids) <= budget or dropped == len(turns):
            break
        dropped += 1
    if len(ids) <= budget:
        return ChatPrompt(text, ids, dropped_turns=dropped)
    frame = len(tokenizer(template.render(""))["input_ids"])
    msg_ids = tokenizer(message, add_special_tokens=False)["input_ids"]
    keep = max(1, budget - frame - 8)  # 8 tokens of slack: re-tokenising can merge differently
    if frame + 1 > budget:
        raise InputError(f"the context window ({budget} tokens) is too small for the template")
    trimmed = tokenizer.decode(msg_ids[-keep:], skip_special_tokens=True)
    text = template.render(trimmed)
    ids = tokenizer(text)["input_ids"][-budget:]
    return ChatPrompt(text, ids, dropped_turns=dropped,
                      trimmed_tokens=max(0, len(msg_ids) - keep))


def visible_text(text: str, markers: Sequence[str]) -> tuple[str, bool]:
    """What to show of a partial generation: ``(text, stopped)``.

    Text after a stop marker is cut (``stopped`` is True). While streaming, a tail that could
    be the start of a marker (``"###"``) is held back so a marker never flashes on screen.
    """
    cut = truncate_at_stop(text, tuple(markers))
    if len(cut) < len(text):
        return cut.rstrip(), True
    hold = 0
    for marker in markers:
        for k in range(min(len(marker) - 1, len(text)), 0, -1):
            if text.endswith(marker[:k]):
                hold = max(hold, k)
                break
    return text[: len(text) - hold], False


@dataclass
class Stats:
    """Speed of one generation (shown in the About panel)."""

    new_tokens: int = 0
    seconds: float = 0.0
    first_token_seconds: float | None = None
    stopped_by: str = "length"

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Progress:
    """Stopping criterion that counts steps and lets the consumer cancel the generation."""

    prompt_len: int
    cancel: threading.Event = field(default_factory=threading.Event)
    new_tokens: int = 0

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        self.new_tokens = int(input_ids.shape[1]) - self.prompt_len
        return torch.full((input_ids.shape[0],), self.cancel.is_set(), dtype=torch.bool,
                          device=input_ids.device)


@functools.lru_cache(maxsize=16)
def stop_criterion(tokenizer, markers: tuple[str, ...]):
    """transformers' StopStringCriteria, built once per tokenizer and markers: building it
    scans the whole vocabulary (~2 s for a 49k vocabulary), using it is cheap and stateless."""
    from transformers import StopStringCriteria

    return StopStringCriteria(tokenizer, list(markers))


def _start_generation(model, tokenizer, input_ids, settings, stop_markers, timeout):
    """Start ``model.generate`` on a thread. Returns (streamer, progress, thread, failures)."""
    import torch
    from transformers import StoppingCriteriaList, TextIteratorStreamer

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True,
                                    timeout=timeout)
    progress = _Progress(prompt_len=len(input_ids))
    criteria = [progress] + ([stop_criterion(tokenizer, tuple(stop_markers))]
                             if stop_markers else [])
    ids = torch.tensor([input_ids], device=model.device)
    kwargs = dict(settings.generate_kwargs(), input_ids=ids, attention_mask=torch.ones_like(ids),
                  streamer=streamer, stopping_criteria=StoppingCriteriaList(criteria),
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    failures: list[BaseException] = []

    def work():
        try:
            with torch.inference_mode():
                model.generate(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer thread
            failures.append(exc)
            streamer.on_finalized_text("", stream_end=True)

    thread = threading.Thread(target=work, name="a3duck-generate", daemon=True)
    thread.start()
    return streamer, progress, thread, failures


def stream_generate(model, tokenizer, input_ids: list[int], settings: Settings,
                    stop_markers: Sequence[str] = (), stats: Stats | None = None,
                    timeout: float = 300.0) -> Iterator[str]:
    """Yield the growing answer text. ``stats`` (if given) is filled in when the stream ends.

    Generation runs on a thread; closing the iterator (visitor left, stop button) cancels it.
    """
    stats = stats if stats is not None else Stats()
    start = time.perf_counter()
    streamer, progress, thread, failures = _start_generation(
        model, tokenizer, input_ids, settings, stop_markers, timeout)

    def close() -> tuple[int, BaseException | None]:
        progress.cancel.set()
        thread.join()
        return progress.new_tokens, failures[0] if failures else None

    yield from follow_stream(streamer, close, settings, stop_markers, stats, start)


def follow_stream(pieces: Iterator[str], close, settings: Settings, stop_markers: Sequence[str],
                  stats: Stats, start: float) -> Iterator[str]:
    """The visible answer growing from streamed text ``pieces``; ``close()`` cancels what is
    left of the generation and returns (number of new tokens, its failure or None).
    Shared by :func:`stream_generate` and the Space's batch scheduler."""
    text, shown, stopped = "", "", False
    try:
        for piece in pieces:
            if piece and stats.first_token_seconds is None:
                stats.first_token_seconds = time.perf_counter() - start
            text += piece
            shown, stopped = visible_text(text, stop_markers)
            if shown:
                yield shown
            if stopped:
                break
    finally:
        stats.new_tokens, failure = close()
        stats.seconds = time.perf_counter() - start
    if failure is not None:
        raise failure
    # The stream has ended: a held-back tail that did not become a marker is shown after all.
    final = shown if stopped else truncate_at_stop(text, tuple(stop_markers)).rstrip()
    stats.stopped_by = "stop marker" if stopped or final != text.rstrip() else (
        "length" if stats.new_tokens >= settings.max_new_tokens else "end of text")
    if final != shown:
        yield final
