"""The ways bench/serve.py serves one load, and the closed-loop clients that drive them.

Each system is a callable ``serve(job) -> Answer`` that blocks until the job's answer is whole;
:func:`drive` runs ``concurrency`` client threads, each sending its next job when its last one is
answered (a fixed number of requests in flight), and times every token it sees.

- :func:`engine_system`: a3duck's serving engine (``a3duck/serving/engine.py``): continuous
  batching, every row with its own adapter slot, requests join between any two tokens;
- :func:`scheduler_system`: the Space's earlier scheduler (``a3duck/space/scheduler.py`` with
  ``batches=True``): mixed-adapter batches, but a request joins only at a batch boundary;
- :func:`peft_system`: what a user does with PEFT today: one ``PeftModel`` holding every adapter,
  the waiting requests of one adapter batched, ``set_adapter`` before each batch.
"""

from __future__ import annotations

import queue
import statistics
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Job:
    adapter: str  # "base" or an adapter name
    slot: int  # the adapter's slot in the MultiAdapterModel (0 = base)
    prompt_ids: list[int]
    new_tokens: int


@dataclass
class Answer:
    text: str
    tokens: int
    sent: float  # perf_counter when the request was sent
    token_times: list[float] = field(default_factory=list)  # when text (a token) arrived
    done: float = 0.0
    ids: list[int] | None = None  # the generated token ids, where the system exposes them


def drive(serve, jobs: list[Job], concurrency: int) -> tuple[list[Answer], float]:
    """Answers (in job order) and the wall seconds of the whole load."""
    todo: queue.Queue = queue.Queue()
    for i, job in enumerate(jobs):
        todo.put((i, job))
    answers: list[Answer | None] = [None] * len(jobs)
    failures: list[BaseException] = []

    def client():
        while True:
            try:
                i, job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                answers[i] = serve(job)
            except BaseException as exc:  # noqa: BLE001 - reported after the load
                failures.append(exc)
                return

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if failures:
        raise failures[0]
    return answers, wall


def summary(answers: list[Answer], wall: float) -> dict:
    """tokens/s, requests/s, time to first token p50/p95 (ms), inter-token latency p50 (ms)."""
    ttft = sorted(1000 * (a.token_times[0] - a.sent) for a in answers if a.token_times)
    itl = [1000 * (a.done - a.token_times[0]) / (a.tokens - 1) for a in answers
           if a.token_times and a.tokens > 1]
    tokens = sum(a.tokens for a in answers)
    return {"tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall,
            "requests_per_s": len(answers) / wall, "ttft_p50_ms": _quantile(ttft, 0.5),
            "ttft_p95_ms": _quantile(ttft, 0.95),
            "itl_p50_ms": statistics.median(itl) if itl else float("nan")}


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


# ----------------------------------------------------------------------------- systems

def engine_system(multi, tokenizer, max_batch: int):
    """a3duck's engine (greedy; an answer ends at EOS or after ``new_tokens``)."""
    from a3duck.serving.engine import Engine
    from a3duck.serving.request import Finished, Inbox, Piece, Request, Sampling

    engine = Engine(multi, tokenizer, max_batch=max_batch, max_queue=1 << 16)

    def serve(job: Job) -> Answer:
        inbox = Inbox()
        answer = Answer("", 0, time.perf_counter())
        request = engine.submit(Request(job.prompt_ids, job.slot, tokenizer,
                                        Sampling(temperature=0), job.new_tokens,
                                        eos=frozenset(engine.eos), sink=inbox.put))
        for event in inbox:
            if isinstance(event, Piece):
                answer.token_times.append(time.perf_counter())
                answer.text += event.text
            elif isinstance(event, Finished):
                if event.error is not None:
                    raise event.error
                answer.tokens, answer.done = event.completion_tokens, time.perf_counter()
        answer.ids = list(request.generated)
        return answer

    serve.engine = engine
    serve.close = engine.close  # its decode thread holds the model: stop it before the next K
    return serve


def scheduler_system(multi, tokenizer, max_batch: int):
    """The Space's batch-boundary scheduler (greedy, the Space's settings otherwise)."""
    from a3duck.generation import Settings
    from a3duck.space.scheduler import Row, Scheduler

    scheduler = Scheduler(multi, tokenizer, max_batch=max_batch, inline=False, batches=True)

    def serve(job: Job) -> Answer:
        settings = Settings.checked(max_new_tokens=job.new_tokens, temperature=0, top_p=1,
                                    top_k=0, repetition_penalty=1)
        answer = Answer("", 0, time.perf_counter())
        (row,) = scheduler.submit([Row(job.prompt_ids, job.adapter, settings)])
        for text in scheduler.follow(row):
            answer.token_times.append(time.perf_counter())
            answer.text = text
        answer.tokens, answer.done = row.new_tokens, time.perf_counter()
        return answer

    serve.scheduler = scheduler
    return serve


def peft_system(peft_model, tokenizer, max_batch: int):
    """One PeftModel with every adapter; a server thread takes the oldest waiting request,
    batches the waiting ones of its adapter (up to ``max_batch``), ``set_adapter``, generates."""
    waiting: list[tuple[Job, Answer, threading.Event]] = []
    cond = threading.Condition()

    def loop():
        while True:
            with cond:
                while not waiting:
                    cond.wait()
                name = waiting[0][0].adapter
                batch = [w for w in waiting if w[0].adapter == name][:max_batch]
                for w in batch:
                    waiting.remove(w)
            _peft_batch(peft_model, tokenizer, batch)

    threading.Thread(target=loop, daemon=True, name="peft-server").start()

    def serve(job: Job) -> Answer:
        answer, ready = Answer("", 0, time.perf_counter()), threading.Event()
        with cond:
            waiting.append((job, answer, ready))
            cond.notify()
        ready.wait()
        return answer

    return serve


class _Clock:
    """A logits processor that only notes when each decoding step's scores are ready."""

    def __init__(self):
        self.times: list[float] = []

    def __call__(self, input_ids, scores):
        self.times.append(time.perf_counter())
        return scores


def _peft_batch(peft_model, tokenizer, batch) -> None:
    import torch
    from transformers import LogitsProcessorList

    jobs = [job for job, _, _ in batch]
    width = max(len(j.prompt_ids) for j in jobs)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([[pad] * (width - len(j.prompt_ids)) + j.prompt_ids for j in jobs])
    mask = (torch.arange(width)[None] >= torch.tensor([width - len(j.prompt_ids)
                                                       for j in jobs])[:, None]).long()
    peft_model.set_adapter(jobs[0].adapter)
    clock = _Clock()
    new = max(j.new_tokens for j in jobs)
    with torch.inference_mode():
        out = peft_model.generate(input_ids=ids.to(peft_model.device),
                                  attention_mask=mask.to(peft_model.device), do_sample=False,
                                  max_new_tokens=new, pad_token_id=pad,
                                  logits_processor=LogitsProcessorList([clock]))
    done = time.perf_counter()
    eos = tokenizer.eos_token_id
    for row, (job, answer, ready) in enumerate(batch):
        generated = out[row, width:width + job.new_tokens].tolist()
        if eos in generated:  # the engine's count: up to and with the EOS
            generated = generated[:generated.index(eos) + 1]
        answer.text = tokenizer.decode(generated, skip_special_tokens=True)
        answer.tokens, answer.token_times, answer.done = len(generated), clock.times, done
        answer.ids = generated
        ready.set()
