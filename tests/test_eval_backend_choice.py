"""`a3duck eval` never falls back silently: an unusable fast backend stops with a message."""

from __future__ import annotations

import sys

import pytest

from a3duck.evaluation import runner


def test_unusable_fast_backend_stops_unless_hf_is_asked_for(monkeypatch):
    # The fast backend module failing to import (an lm-eval outside the pinned range does that).
    monkeypatch.setitem(sys.modules, "a3duck.evaluation.fast_backend", None)
    with pytest.raises(runner.EvalError, match="--backend hf"):
        runner.lm_class("a3duck")
    assert runner.lm_class("hf").__name__ == "HFLM"


def test_fast_backend_is_the_default_and_unknown_backends_are_refused():
    assert runner.lm_class("a3duck").__name__ == "A3DuckLM"
    with pytest.raises(runner.EvalError, match="unknown backend"):
        runner.lm_class("vllm")
