"""How the Space decodes: every visitor's rows go through one continuous-batching engine.

Every chat / few-shot / Compare answer is a :class:`Row` (prompt ids, adapter name, settings,
stop markers) handed to :meth:`Scheduler.stream` (or :meth:`Scheduler.submit` + ``follow``).
By default each row becomes a request of :class:`a3duck.serving.engine.Engine` — the engine the
OpenAI API at ``/v1`` uses too, when it is on: rows join and leave the running batch between
any two tokens, whatever adapter (base included) and sampling settings each has (the Space's
repetition penalty is one of the engine's per-row settings), so a visitor never waits for the
answer of the one in front. A Compare request's rows are admitted at one step (prefilled
together). Each row keeps its own token limit, stop markers and cancel, and streams its text.

ZeroGPU: there the GPU exists only inside each ``@spaces.GPU``-decorated call, so a
long-lived decode thread cannot hold it. With ``inline=True`` (chosen when ``SPACES_ZERO_GPU``
is set) each request decodes its own rows (one chat row, or every row of a Compare request in
one left-padded mixed ``generate`` call) on a thread of its own, inside that request's GPU
call; visitors are then batched only within a request, and Gradio's queue orders them.

``batches=True`` keeps the Space's earlier way, for ``bench/serve.py``'s comparison only:
worker threads take every waiting row with the same settings into one ``generate`` call, and
rows that arrive meanwhile wait for the next one (batch boundaries).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from a3duck.generation import Settings, Stats, follow_stream, stop_criterion
from a3duck.space.zerogpu import on_zerogpu

MAX_BATCH = 16  # rows decoded together at most
WORKERS = 2  # batches=True only: batches decoding at once


@dataclass
class Row:
    """One answer to generate and the per-row state the worker updates."""

    input_ids: list[int]
    adapter: str
    settings: Settings
    markers: tuple[str, ...] = ()
    cancel: threading.Event = field(default_factory=threading.Event)
    new_tokens: int = 0
    done: bool = False
    error: BaseException | None = None
    streamer: object = None
    request: object = None  # its engine Request (engine mode)

    def group(self) -> tuple:
        """Rows that can share a generate call: the same sampling settings."""
        kwargs = self.settings.generate_kwargs()
        kwargs.pop("max_new_tokens")
        return tuple(sorted(kwargs.items()))


class Scheduler:
    """Serves :class:`Row` s from many threads through one model (see the module doc)."""

    def __init__(self, multi, tokenizer, max_batch: int = MAX_BATCH, inline: bool | None = None,
                 timeout: float = 300.0, workers: int = WORKERS, batches: bool = False):
        self.multi, self.tokenizer, self.max_batch, self.timeout = multi, tokenizer, max_batch, \
            timeout
        self.workers = workers
        self.inline = on_zerogpu() if inline is None else inline
        self.use_batches = batches and not self.inline
        self._engine = None
        self._pending: list[Row] = []
        self._cond = threading.Condition()
        self._hold = threading.Lock()  # held while a batch is formed (and by hold())
        self.batches: list[int] = []  # size of every generate call (inline / batches=True)
        self._threads: list[threading.Thread] = []

    @property
    def engine(self):
        """The continuous-batching engine of this model (made on first use; ``/v1`` shares it)."""
        if self._engine is None:
            from a3duck.serving.engine import Engine

            self._engine = Engine.for_model(self.multi, self.tokenizer, max_batch=self.max_batch)
        return self._engine

    @property
    def on_engine(self) -> bool:
        return not self.inline and not self.use_batches

    def stream(self, input_ids: list[int], adapter: str, settings: Settings,
               markers: Sequence[str] = (), stats: Stats | None = None) -> Iterator[str]:
        """Yield the growing answer of one row (see :func:`a3duck.generation.follow_stream`)."""
        rows = self.submit([Row(list(input_ids), adapter, settings, tuple(markers))])
        return self.follow(rows[0], stats)

    def submit(self, rows: list[Row]) -> list[Row]:
        """Queue rows together (a Compare request's rows start at the same step)."""
        slots = self.multi.index_of([r.adapter for r in rows])  # unknown names fail here
        if self.on_engine:
            return self._submit_to_engine(rows, slots.tolist())
        from transformers import TextIteratorStreamer

        for row in rows:
            row.streamer = TextIteratorStreamer(self.tokenizer, skip_special_tokens=True,
                                                timeout=self.timeout)
        if self.inline:
            threading.Thread(target=self._run_inline, args=(rows,), daemon=True).start()
            return rows
        with self._cond:
            self._pending.extend(rows)
            self._cond.notify_all()
            while len(self._threads) < self.workers:
                self._threads.append(threading.Thread(target=self._loop, daemon=True,
                                                      name=f"a3duck-batches-{len(self._threads)}"))
                self._threads[-1].start()
        return rows

    def _submit_to_engine(self, rows: list[Row], slots: list[int]) -> list[Row]:
        from a3duck.serving.request import Inbox, Request, Sampling

        engine = self.engine
        for row, slot in zip(rows, slots):
            s = row.settings
            row.streamer = Inbox()
            sampling = Sampling(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k,
                                repetition_penalty=s.repetition_penalty)
            # stop markers are the follower's (follow_stream cuts there and cancels the row)
            row.request = Request(row.input_ids, slot, self.tokenizer, sampling,
                                  s.max_new_tokens, eos=frozenset(engine.eos),
                                  sink=row.streamer.put)
        engine.submit_all([row.request for row in rows])  # admitted at one step, together
        return rows

    def follow(self, row: Row, stats: Stats | None = None) -> Iterator[str]:
        stats = stats if stats is not None else Stats()

        def close():
            row.cancel.set()
            if row.request is not None:
                row.request.cancel()
                return len(row.request.generated), row.error
            return row.new_tokens, row.error

        on_engine = row.request is not None
        pieces = _whole_texts(row) if on_engine else row.streamer
        return follow_stream(pieces, close, row.settings, row.markers, stats,
                             time.perf_counter(), whole=on_engine)

    @property
    def waiting(self) -> int:
        """Rows queued and not started yet."""
        return self.engine.load[1] if self.on_engine else len(self._pending)

    @contextlib.contextmanager
    def hold(self):
        """No batch (engine: no step) starts inside this block (tests use it to make requests
        wait and arrive together)."""
        if self.on_engine:
            with self.engine.hold():
                yield
            return
        with self._hold:
            yield

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
            with self._hold, self._cond:  # every row waiting now joins this batch
                if not self._pending:
                    continue  # another worker took them
                key = self._pending[0].group()
                batch = [r for r in self._pending if r.group() == key][: self.max_batch]
                self._pending = [r for r in self._pending if r not in batch]
            self._run(batch)

    def _run_inline(self, rows: list[Row]) -> None:
        with self._hold:
            pass
        self._run(rows)

    def _run(self, rows: list[Row]) -> None:
        live = [r for r in rows if not r.cancel.is_set()]  # visitors who left while waiting
        try:
            if live:
                self.batches.append(len(live))
                self._generate(live)
        except BaseException as exc:  # noqa: BLE001 - every waiting visitor gets the error
            for row in live:
                row.error = row.error or exc
        finally:
            for row in rows:
                _finish(row)

    def _generate(self, rows: list[Row]) -> None:
        import torch
        from transformers import StoppingCriteriaList

        tok = self.tokenizer
        width = max(len(r.input_ids) for r in rows)
        pad = tok.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r.input_ids)) + r.input_ids for r in rows])
        mask = torch.tensor([[0] * (width - len(r.input_ids)) + [1] * len(r.input_ids)
                             for r in rows])
        watch = _RowWatch(rows, tok, width)
        kwargs = dict(rows[0].settings.generate_kwargs(),
                      max_new_tokens=max(r.settings.max_new_tokens for r in rows))
        device = self.multi.device
        with torch.inference_mode():
            self.multi.generate([r.adapter for r in rows], input_ids=ids.to(device),
                                attention_mask=mask.to(device), streamer=watch,
                                stopping_criteria=StoppingCriteriaList([watch]),
                                pad_token_id=pad, eos_token_id=tok.eos_token_id, **kwargs)


def _whole_texts(row: Row) -> Iterator[str]:
    """An engine row's whole text so far, each time it grows, then the answer decoded in one
    piece (:attr:`Finished.text`) where that differs; the engine's error goes to ``row.error``."""
    from a3duck.serving.request import Finished

    text = ""
    for event in row.streamer:  # the row's Inbox
        if isinstance(event, Finished):
            row.error = event.error
            if event.text is not None and event.text != text:
                yield event.text
        else:
            text += event.text
            yield text


def _finish(row: Row) -> None:
    if not row.done:
        row.done = True
        row.streamer.end()


class _RowWatch:
    """Streamer + stopping criterion of a batch: hands each row its own tokens and stops a
    row at its token limit, stop markers, end of text or cancel."""

    def __init__(self, rows: list[Row], tokenizer, width: int):
        self.rows, self.width, self.first = rows, width, True
        eos = tokenizer.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [eos])
        self.stops = {m: stop_criterion(tokenizer, m) for m in {r.markers for r in rows} if m}

    def put(self, value) -> None:  # streamer API: the prompt first, then one token per row
        import torch

        if self.first:
            self.first = False
            return
        for row, token in zip(self.rows, value.reshape(-1).tolist()):
            if row.done:
                continue
            row.new_tokens += 1
            row.streamer.put(torch.tensor([token]))
            if token in self.eos:
                _finish(row)

    def end(self) -> None:
        for row in self.rows:
            _finish(row)

    def __call__(self, input_ids, scores, **kwargs):  # stopping-criterion API
        import torch

        hits = {m: crit(input_ids, scores) for m, crit in self.stops.items()}
        for i, row in enumerate(self.rows):
            if row.done:
                continue
            if (row.cancel.is_set() or row.new_tokens >= row.settings.max_new_tokens
                    or (row.markers and bool(hits[row.markers][i]))):
                _finish(row)
        return torch.tensor([r.done for r in self.rows], device=input_ids.device)


def answer_together(rt, rows, settings, stats: dict, fit):
    """Submit ``rows`` [(name, ids, markers)] of a Space runtime ``rt`` as one batch (settings
    cut to each row's room by ``fit``); yields (name, text) as they grow."""
    import queue

    batch = [Row(ids, rt.internal_name(name), fit(rt, ids, settings), tuple(markers))
             for name, ids, markers in rows]
    rt.scheduler.submit(batch)
    updates: queue.Queue = queue.Queue()

    def pump(name, row):
        try:
            for text in rt.scheduler.follow(row, stats[name]):
                updates.put((name, text, None))
        except Exception as exc:  # noqa: BLE001 - re-raised in the handler's thread
            updates.put((name, None, exc))
        updates.put((name, None, None))

    for (name, _, _), row in zip(rows, batch):
        threading.Thread(target=pump, args=(name, row), daemon=True).start()
    left = len(rows)
    try:
        while left:
            name, text, error = updates.get()
            if error is not None:
                raise error
            if text is None:
                left -= 1
            else:
                yield name, text
    finally:
        for row in batch:
            row.cancel.set()
