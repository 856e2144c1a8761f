"""ZeroGPU off: the `spaces` decorator leaves the handlers as they are, and the GPU time asked for
grows with the request."""

from __future__ import annotations

import pytest


def test_decorator_is_a_no_op_off_zerogpu(monkeypatch):
    import spaces  # installed (requirements.txt): the real package decides, not a stub
    from spaces.config import Config

    from a3duck.space import zerogpu

    assert not Config.zero_gpu and not zerogpu.on_zerogpu()

    def work(prompt, max_new_tokens):
        return f"{prompt}:{max_new_tokens}"

    wrapped = zerogpu.gpu(lambda prompt, max_new_tokens: 30)(work)
    assert wrapped is work and wrapped("hi", 3) == "hi:3"
    assert spaces.GPU(duration=5)(work) is work  # what zerogpu.gpu relies on

    monkeypatch.setattr(zerogpu.importlib.util, "find_spec", lambda name: None)
    assert zerogpu.gpu(lambda *a: 1)(work) is work and not zerogpu.on_zerogpu()  # no package


def test_one_zerogpu_rule_for_the_space_and_its_scheduler():
    """The scheduler decides 'run inline on ZeroGPU' by the same test as the decorator (the
    ``spaces`` package's Config, which reads SPACES_ZERO_GPU=false as off)."""
    from a3duck.space import scheduler, zerogpu

    assert scheduler.on_zerogpu is zerogpu.on_zerogpu
    assert not hasattr(scheduler, "on_zero_gpu")
    assert scheduler.Scheduler(None, None, workers=0).inline is zerogpu.on_zerogpu() is False


def test_handlers_are_not_wrapped_off_zerogpu(tiny_llama_dir):
    from space_support import load_runtime

    from a3duck.space import handlers

    rt = load_runtime(tiny_llama_dir, None)
    chat = handlers.chat_handler(rt)
    score, generate = handlers.fewshot_handlers(rt)
    # Only our own error wrapper (functools.wraps) sits on the functions: no ZeroGPU wrapper.
    for fn in (chat, score, generate, handlers.compare_handler(rt)):
        assert not hasattr(fn, "zerogpu") and fn.__wrapped__.__name__ == fn.__name__
    answer = list(chat("Say hi.", [], 4, 0, 1.0, 0, 1.0))[-1][0]
    assert isinstance(answer, str) and answer


@pytest.mark.parametrize("prompt, new, passes, expected", [
    (0, 0, 1, 15),             # floor: attaching a GPU costs time even for nothing
    (100, 256, 1, 25),         # 10 + 0.2 + 15.36
    (100, 256, 2, 41),         # compare: two answers
    (500, 1024, 2, 120),       # cap: what ZeroGPU grants
])
def test_gpu_seconds_follow_the_request(prompt, new, passes, expected):
    from a3duck.space.zerogpu import gpu_seconds

    assert gpu_seconds(prompt, new, passes) == expected
