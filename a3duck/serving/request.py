"""One request of the serving engine: its settings, its tokens, and the events it sends.

The engine calls :meth:`Request.advance` with each new token; the request decodes its text,
holds back what could still become a stop string (or a half-decoded character), and sends a
:class:`Piece` to its ``sink`` whenever visible text grows, then one :class:`Finished`.
``sink`` is any callable; :class:`Inbox` turns the events into a blocking iterator.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from a3duck.prompts import truncate_at_stop


@dataclass(frozen=True)
class Sampling:
    """Per-request sampling: OpenAI's settings (temperature 0 = greedy) plus top-k (0 = off)
    and a repetition penalty (1 = none; the Space's setting, never set by the OpenAI API)."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    repetition_penalty: float = 1.0


@dataclass
class TokenInfo:
    """One generated token: its id, text, log-probability and the top alternatives."""

    id: int
    text: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Piece:
    """Visible text that grew by ``text`` with these ``tokens`` (the tokens since the last)."""

    text: str
    tokens: list[TokenInfo]


@dataclass
class Finished:
    """The end: ``reason`` is stop / length / cancelled / error (``error`` then set).
    ``text``: the whole answer decoded in one piece (None when cancelled or failed) — what a
    non-streamed answer is. The streamed pieces add up to it except where decoding a token
    changed text already sent (byte-fallback pieces of one character): a stream cannot take
    text back, so there the pieces keep what was sent."""

    reason: str
    prompt_tokens: int
    completion_tokens: int
    error: BaseException | None = None
    text: str | None = None


class Request:
    """See the module doc. ``slot``: the adapter slot (0 = base); ``logprobs``: None, or how
    many alternatives to report per token (0 = only the chosen token's); ``echo``: also report
    the prompt's tokens with their log-probabilities (sent as the first :class:`Piece`)."""

    def __init__(self, prompt_ids: Sequence[int], slot: int, tokenizer, sampling: Sampling,
                 max_tokens: int, stop: Sequence[str] = (), *, logprobs: int | None = None,
                 echo: bool = False, eos: frozenset[int] = frozenset(), context: int = 1 << 30,
                 sink: Callable[[object], None] | None = None):
        self.prompt_ids, self.slot, self.tokenizer = list(prompt_ids), slot, tokenizer
        self.sampling, self.max_tokens, self.stop = sampling, max_tokens, tuple(s for s in stop if s)
        self.logprobs, self.echo, self.eos, self.context = logprobs, echo, eos, context
        self.sink = sink or (lambda event: None)
        self.generator = torch.Generator()
        if sampling.seed is not None:
            self.generator.manual_seed(sampling.seed)
        else:
            self.generator.seed()
        self.cancelled = threading.Event()
        self.generated: list[int] = []
        self.cached = 0  # tokens of this row in the engine's KV cache
        self.finished = False
        self._sent = ""  # visible text already sent
        self._pending: list[TokenInfo] = []  # tokens whose text is not sent yet
        self._end_text = 0  # characters of decoded text before the EOS/stop (see _visible)

    @property
    def last_token(self) -> int:
        return self.generated[-1]

    def cancel(self) -> None:
        """The client left: the engine drops the row at its next step."""
        self.cancelled.set()

    # -- called by the engine ----------------------------------------------------------------

    def advance(self, token: int, logits: torch.Tensor) -> bool:
        """Take one new token; False when the request is finished (and told so)."""
        self.generated.append(token)
        if self.logprobs is not None:
            self._pending.append(self._token_info(token, logits))
        if token in self.eos:
            return self._finish_with("stop", self.generated[:-1])
        text = self.tokenizer.decode(self.generated, skip_special_tokens=True)
        cut = truncate_at_stop(text, self.stop)
        if len(cut) < len(text):
            return self._finish_with("stop", None, cut)
        self._send(self._visible(text))
        if len(self.generated) >= self.max_tokens or self.cached + 1 >= self.context:
            return self._finish_with("length", self.generated)
        return True

    def prompt_logits(self, logits: torch.Tensor) -> None:
        """The prompt's own tokens with their log-probabilities (``echo``); the first token has
        none (``nan``), as OpenAI reports null there."""
        logprobs = torch.log_softmax(logits, dim=-1)
        infos = [TokenInfo(self.prompt_ids[0], self._piece(self.prompt_ids[0]), float("nan"))]
        for pos, tok in enumerate(self.prompt_ids[1:]):
            infos.append(self._info_from(tok, logprobs[pos]))
        self.sink(Piece(self.tokenizer.decode(self.prompt_ids, skip_special_tokens=True), infos))

    def finish(self, reason: str, error: BaseException | None = None,
               text: str | None = None) -> None:
        if self.finished:
            return
        self.finished = True
        self.sink(Finished(reason, len(self.prompt_ids), len(self.generated), error, text))

    def fail(self, error: BaseException) -> None:
        self.finish("error", error)

    # -- text ---------------------------------------------------------------------------------

    def _finish_with(self, reason: str, ids: list[int] | None, text: str | None = None) -> bool:
        if text is None:
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
        self._send(text, final=True)
        self.finish(reason, text=text)
        return False

    def _visible(self, text: str) -> str:
        """``text`` minus a tail that may still change: a half-decoded character, or the start
        of a stop string."""
        hold = len(text) - len(text.rstrip("\ufffd"))  # bytes a later token may complete
        for marker in self.stop:
            for k in range(min(len(marker) - 1, len(text)), 0, -1):
                if text.endswith(marker[:k]):
                    hold = max(hold, k)
                    break
        return text[: len(text) - hold]

    def _send(self, shown: str, final: bool = False) -> None:
        if not shown.startswith(self._sent):  # re-decoding changed earlier text: wait
            if not final:
                return
            shown = self._sent + shown[len(self._sent):]
        if len(shown) > len(self._sent) or (final and self._pending):
            self.sink(Piece(shown[len(self._sent):], self._pending))
            self._sent, self._pending = shown, []

    def _piece(self, token: int) -> str:
        return self.tokenizer.decode([token], skip_special_tokens=False)

    def _token_info(self, token: int, logits: torch.Tensor) -> TokenInfo:
        return self._info_from(token, torch.log_softmax(logits, dim=-1))

    def _info_from(self, token: int, logprobs: torch.Tensor) -> TokenInfo:
        top = []
        if self.logprobs:
            values, ids = torch.topk(logprobs, self.logprobs)
            top = [(self._piece(int(i)), float(v)) for v, i in zip(values, ids)]
        return TokenInfo(token, self._piece(token), float(logprobs[token]), top)


class Inbox:
    """A request's events as a blocking iterator: ``Request(..., sink=inbox.put)``."""

    def __init__(self):
        self._queue: queue.Queue = queue.Queue()

    def put(self, event) -> None:
        self._queue.put(event)

    def __iter__(self) -> Iterator[object]:
        while True:
            event = self._queue.get()
            yield event
            if isinstance(event, Finished):
                return
