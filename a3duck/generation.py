"""Text generation for every front end: ``compare``, the terminal ``chat`` and the Space.

``stream_generate`` runs ``model.generate`` on a background thread feeding a
``TextIteratorStreamer``; it stops at EOS and at the given stop markers, never showing a
half-written marker. ``generate_text`` drains it for callers that want the whole answer.
``Settings`` are the sampling settings and their valid ranges (``Limits``); untrusted values
raise :class:`a3duck.errors.InputError`. Prompt building and input checks of the Space live in
:mod:`a3duck.space.chat`; nothing here knows about Gradio or the Space.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from a3duck.errors import InputError
from a3duck.prompts import truncate_at_stop


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
        from a3duck.limits import check_number

        clean = {}
        for name, raw in values.items():  # the one number rule (a3duck.limits), named
            low, high = getattr(LIMITS, name)
            integer = type(low) is int
            if integer and isinstance(raw, float) and raw.is_integer():
                raw = int(raw)  # a slider sends 256.0
            value = check_number(name, raw, error=InputError, low=low, high=high,
                                 integer=integer)
            clean[name] = value if integer else float(value)
        return cls(**clean)

    def with_max(self, max_new_tokens: int) -> Settings:
        """These settings with another token budget."""
        return dataclasses.replace(self, max_new_tokens=max_new_tokens)

    def generate_kwargs(self) -> dict:
        if self.temperature == 0:
            return {"max_new_tokens": self.max_new_tokens, "do_sample": False,
                    "repetition_penalty": self.repetition_penalty}
        return {"max_new_tokens": self.max_new_tokens, "do_sample": True,
                "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                "repetition_penalty": self.repetition_penalty}


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


def _generate_kwargs(model, tokenizer, input_ids: list[int], settings: Settings,
                     stop_markers: Sequence[str], extra_criteria=()) -> dict:
    """``model.generate`` arguments: the settings, EOS/pad ids and the stop-marker criterion."""
    import torch
    from transformers import StoppingCriteriaList

    criteria = list(extra_criteria) + ([stop_criterion(tokenizer, tuple(stop_markers))]
                                       if stop_markers else [])
    ids = torch.tensor([input_ids], device=model.device)
    return dict(settings.generate_kwargs(), input_ids=ids, attention_mask=torch.ones_like(ids),
                stopping_criteria=StoppingCriteriaList(criteria),
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)


def _start_generation(model, tokenizer, input_ids, settings, stop_markers, timeout):
    """Start ``model.generate`` on a thread. Returns (streamer, progress, thread, failures)."""
    import torch
    from transformers import TextIteratorStreamer

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True,
                                    timeout=timeout)
    progress = _Progress(prompt_len=len(input_ids))
    kwargs = dict(_generate_kwargs(model, tokenizer, input_ids, settings, stop_markers,
                                   [progress]), streamer=streamer)
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
                  stats: Stats, start: float, whole: bool = False) -> Iterator[str]:
    """The visible answer growing from streamed text ``pieces`` (``whole``: each piece is the
    whole text so far, which may rewrite earlier text, else an addition); ``close()`` cancels
    what is left of the generation and returns (number of new tokens, its failure or None).
    Shared by :func:`stream_generate` and the Space's scheduler."""
    text, shown, stopped = "", "", False
    try:
        for piece in pieces:
            if piece and stats.first_token_seconds is None:
                stats.first_token_seconds = time.perf_counter() - start
            text = piece if whole else text + piece
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


def generate_text(model, tokenizer, prompt: str, settings: Settings,
                  stop_markers: Sequence[str] = (), add_special_tokens: bool = True) -> str:
    """The whole generated text after ``prompt``, cut at the first stop marker; generation
    stops there too. Decoded in one piece (a streamer decodes in segments, which can differ
    for byte-fallback tokens), so this equals a plain ``model.generate`` + ``decode``.
    ``add_special_tokens``: the template's (a chat template writes its own BOS)."""
    import torch

    input_ids = tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
    with torch.inference_mode():
        out = model.generate(**_generate_kwargs(model, tokenizer, input_ids, settings,
                                                stop_markers))
    text = tokenizer.decode(out[0, len(input_ids):], skip_special_tokens=True)
    return truncate_at_stop(text, tuple(stop_markers))
