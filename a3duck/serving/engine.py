"""The serving engine: continuous batching over one base with many IA3 adapters.

One decode thread owns the model. At every step it (1) drops rows whose client left, (2) admits
waiting requests while there is room (those admitted at one step are prefilled together in one
left-padded batch, each row with its own adapter; a request asking for its prompt's logprobs
is prefilled alone) and samples each one's first token at once, then (3) runs one decode step
for every running row together: row ``r`` feeds its last token with its adapter slot (:meth:`MultiAdapterModel.slots`), its own
position and the batch's left-padded KV cache, and samples with its own settings and seed.
Requests therefore join and leave between any two tokens: a short request never waits for a
long answer in front of it. Rows that finish leave the cache; columns that only padding uses
are trimmed.

Why not transformers' ContinuousBatchingManager: see DESIGN.md ("Serving"); in short its
forward call takes a packed ``[1, tokens]`` batch with no per-request payload and its sampler
has one ``do_sample`` and no per-request seed, so a per-token adapter index cannot reach
:class:`IA3Bank` without patching it.

Exactness: a prefill is the call ``generate`` makes (alone, or left-padded with mask and
positions as ``generate`` prefills a batch); decode steps are ``generate``'s
left-padded batched steps (mask + explicit positions). Greedy fp32 output equals each adapter's
own ``PeftModel.generate`` (tests/test_serving_engine.py).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence

import torch
from transformers import RepetitionPenaltyLogitsProcessor

from a3duck.errors import A3DuckError
from a3duck.serving.request import Request

log = logging.getLogger(__name__)

MAX_BATCH = 16  # rows decoded together at most (more wait in the queue)
MAX_QUEUE = 64  # requests waiting beyond the running ones before "over capacity"


class Overloaded(A3DuckError):
    """The queue is full: the client should retry later (HTTP 429)."""


class Engine:
    """Serves :class:`Request` s from any thread through one model (see the module doc)."""

    def __init__(self, multi, tokenizer, *, max_batch: int = MAX_BATCH,
                 max_queue: int = MAX_QUEUE, eos_ids: Sequence[int] = ()):
        self.multi, self.tokenizer = multi, tokenizer
        self.max_batch, self.max_queue = max_batch, max_queue
        eos = tokenizer.eos_token_id
        self.eos = set(eos_ids) | set(eos if isinstance(eos, list) else [eos])
        self._waiting: collections.deque[Request] = collections.deque()
        self._cond = threading.Condition()
        self._gate = threading.Lock()  # held by a step's admission and by hold()
        self._rows: list[Request] = []
        self._cache = None  # DynamicCache of the running rows, left-padded: [rows, heads, L, d]
        self._mask: torch.Tensor | None = None  # [rows, L]: 1 where a row has a real token
        self._thread: threading.Thread | None = None
        self._closed = False
        self.steps = 0  # decode steps run (tests, bench)
        self.peak_rows = 0
        self.prefills: list[int] = []  # requests prefilled by each prefill call (tests, bench)
        pad = tokenizer.pad_token_id
        self._pad = pad if pad is not None else min(self.eos, default=0)  # masked out anyway

    @classmethod
    def for_model(cls, multi, tokenizer, **limits) -> Engine:
        """An engine that also ends answers at the model's generation-config EOS ids (chat
        models often end turns with a token other than the tokenizer's EOS)."""
        eos = getattr(getattr(multi.model, "generation_config", None), "eos_token_id", None)
        eos_ids = eos if isinstance(eos, list) else [eos] if eos is not None else []
        return cls(multi, tokenizer, eos_ids=eos_ids, **limits)

    # -- the public side ------------------------------------------------------------------

    def submit(self, request: Request) -> Request:
        """Queue ``request``; Overloaded when ``max_queue`` requests already wait."""
        self.submit_all([request])
        return request

    def submit_all(self, requests: Sequence[Request]) -> None:
        """Queue ``requests`` at once (admitted at one step where the batch has room), or none
        of them: Overloaded when they do not fit in the queue."""
        with self._cond:
            if self._closed:
                raise Overloaded("the server is shutting down: no new requests")
            if len(self._waiting) + len(requests) > self.max_queue:
                raise Overloaded(f"the server is over capacity ({self.max_queue} requests "
                                 "waiting): retry in a moment")
            self._waiting.extend(requests)
            self._cond.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="a3duck-engine")
                self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the decode thread after its current step: running and waiting requests end
        as "cancelled", the KV cache is released and later submits are refused. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @contextlib.contextmanager
    def hold(self):
        """No step starts inside this block, while submits (from any thread) go on: the
        requests submitted meanwhile are admitted together at the next step (a Compare
        request's rows; tests use it to make requests arrive at one step)."""
        with self._gate:
            yield

    @property
    def load(self) -> tuple[int, int]:
        """(running rows, waiting requests)."""
        return len(self._rows), len(self._waiting)

    # -- the decode thread ------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._rows and not self._closed:
                    self._cond.wait()
            with self._gate, self._cond:  # not inside hold(); every request waiting now
                if self._closed:
                    gone = [*self._rows, *self._waiting]
                    self._waiting.clear()
                    break
                admit = []
                while self._waiting and len(self._rows) + len(admit) < self.max_batch:
                    admit.append(self._waiting.popleft())
            try:
                self._drop([r for r in self._rows if r.cancelled.is_set()])
                self._admit_all(admit)
                if self._rows:
                    self._step()
            except Exception as exc:
                log.exception("decode step failed")
                self._fail_all(exc)
        for request in gone:
            if not request.finished:
                request.finish("cancelled")
        self._rows, self._cache, self._mask = [], None, None

    def _admit_all(self, requests: list[Request]) -> None:
        """Prefill the requests admitted at this step: together, except a request asking for
        its prompt's logprobs (every position's logits), which is prefilled alone."""
        live = []
        for request in requests:
            if request.cancelled.is_set():
                request.finish("cancelled")
            else:
                live.append(request)
        together = [r for r in live if not r.echo]
        for group in [[r] for r in live if r.echo] + ([together] if together else []):
            self._admit(group)

    def _admit(self, group: list[Request]) -> None:
        try:
            cache, logits, mask = self._prefill(group)
        except Exception as exc:
            if len(group) > 1:  # one bad request must not fail the others: each alone
                for request in group:
                    self._admit([request])
                return
            log.exception("prefill failed")
            group[0].fail(exc)
            return
        self.prefills.append(len(group))
        keep = []
        for i, request in enumerate(group):
            request.cached = len(request.prompt_ids)
            if request.advance(pick_token(logits[i, -1], request), logits[i, -1]):
                keep.append(i)
        if keep:
            self._join(group, cache, mask, keep)

    def _prefill(self, group: list[Request]):
        """(cache, logits, mask) of the group's prompts, left-padded to the longest."""
        from transformers import DynamicCache

        device = self.multi.device
        width = max(len(r.prompt_ids) for r in group)
        ids = torch.tensor([[self._pad] * (width - len(r.prompt_ids)) + r.prompt_ids
                            for r in group], device=device)
        mask = torch.tensor([[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids)
                             for r in group], device=device)
        # one request: exactly generate's unpadded call (no mask, implicit positions)
        padded = {} if len(group) == 1 else {
            "attention_mask": mask, "position_ids": (mask.cumsum(1) - 1).clamp(min=0)}
        cache = DynamicCache()
        echo = group[0].echo  # only ever alone (_admit_all)
        slots = torch.tensor([r.slot for r in group])
        with torch.inference_mode(), self.multi.slots(slots) as model:
            out = model(input_ids=ids, past_key_values=cache, use_cache=True,
                        logits_to_keep=0 if echo else 1, **padded)
        logits = out.logits.float()
        if echo:
            group[0].prompt_logits(logits[0, :-1])
        return cache, logits, mask

    def _step(self) -> None:
        rows = self._rows
        device = self.multi.device
        tokens = torch.tensor([[r.last_token] for r in rows], device=device)
        positions = torch.tensor([[r.cached] for r in rows], device=device)
        mask = torch.cat([self._mask, torch.ones(len(rows), 1, dtype=self._mask.dtype,
                                                 device=device)], dim=1)
        slots = torch.tensor([r.slot for r in rows])
        with torch.inference_mode(), self.multi.slots(slots) as model:
            out = model(input_ids=tokens, attention_mask=mask, position_ids=positions,
                        past_key_values=self._cache, use_cache=True)
        self._mask = mask
        self.steps += 1
        logits = out.logits[:, -1].float()
        done = []
        for i, row in enumerate(rows):
            row.cached += 1
            if not row.advance(pick_token(logits[i], row), logits[i]):
                done.append(row)
        self._drop(done)

    def _join(self, group: list[Request], cache, mask: torch.Tensor, keep: list[int]):
        """Add the prefilled requests ``group[i]`` for ``i`` in ``keep`` (rows of ``cache`` and
        ``mask``) to the running batch, left-padding whichever is shorter."""
        requests = [group[i] for i in keep]
        if len(keep) < len(group):  # some finished at their first token
            index = torch.tensor(keep, device=mask.device)
            mask = mask[index]
            for layer in cache.layers:
                layer.keys, layer.values = layer.keys[index], layer.values[index]
        if self._cache is None:
            self._cache, self._mask, self._rows = cache, mask, list(requests)
        else:
            width = max(self._mask.shape[1], mask.shape[1])
            for mine, theirs in zip(self._cache.layers, cache.layers):
                mine.keys = torch.cat([_lpad(mine.keys, width), _lpad(theirs.keys, width)])
                mine.values = torch.cat([_lpad(mine.values, width),
                                         _lpad(theirs.values, width)])
            self._mask = torch.cat([_lpad(self._mask, width), _lpad(mask, width)])
            self._rows.extend(requests)
        self.peak_rows = max(self.peak_rows, len(self._rows))

    def _drop(self, gone: list[Request]) -> None:
        """Remove rows (finished or cancelled) from the batch and its cache."""
        if not gone:
            return
        for row in gone:
            if not row.finished:
                row.finish("cancelled")
        keep = [i for i, r in enumerate(self._rows) if r not in gone]
        self._rows = [self._rows[i] for i in keep]
        if not self._rows:
            self._cache = self._mask = None
            return
        index = torch.tensor(keep, device=self.multi.device)
        mask = self._mask[index]
        start = int((mask.sum(0) > 0).nonzero()[0])  # columns only padding uses: trimmed
        self._mask = mask[:, start:]
        for layer in self._cache.layers:
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]

    def _fail_all(self, exc: BaseException) -> None:
        for row in self._rows:
            row.fail(exc)
        self._rows, self._cache, self._mask = [], None, None


def _lpad(t: torch.Tensor, width: int) -> torch.Tensor:
    """``t`` (sequence on dim 2 for KV ``[b, h, L, d]``, dim 1 for a mask ``[b, L]``) left-padded
    with zeros to ``width`` positions."""
    dim = 2 if t.dim() == 4 else 1
    missing = width - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def pick_token(logits: torch.Tensor, request: Request) -> int:
    """The next token of one row: argmax at temperature 0, else a sample from the row's own
    generator after temperature, top-k (0 = off) and top-p (nucleus; the top token always
    stays) — OpenAI's settings — and, first, the row's repetition penalty where it is not 1
    (the Space's; transformers' rule: every token of prompt and answer so far has its score
    divided by the penalty when positive, multiplied when negative)."""
    s = request.sampling
    if s.repetition_penalty != 1.0:  # transformers' own processor: greedy equals generate's
        seen = torch.tensor([request.prompt_ids + request.generated], device=logits.device)
        logits = RepetitionPenaltyLogitsProcessor(s.repetition_penalty)(seen, logits[None])[0]
    if s.temperature == 0:
        return int(torch.argmax(logits))
    scores = logits / s.temperature
    if s.top_k and s.top_k < scores.numel():
        kth = torch.topk(scores, s.top_k).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if s.top_p < 1.0:
        ordered, order = torch.sort(scores, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # mass of the tokens ranked above
        ordered = ordered.masked_fill(before > s.top_p, float("-inf"))
        scores = torch.full_like(scores, float("-inf")).scatter(0, order, ordered)
    probs = torch.softmax(scores, dim=-1)
    return int(torch.multinomial(probs, 1, generator=request.generator))


EventSink = Callable[[object], None]
