"""The Space's chat starts greedy for a small base, and its slider label says so (running app)."""

from __future__ import annotations

import json
import urllib.request

import pytest
from space_support import load_runtime, make_adapter, serve

pytestmark = pytest.mark.slow


def test_small_base_chat_defaults_to_greedy_and_says_so(tiny_llama_dir, tmp_path):
    runtime = load_runtime(tiny_llama_dir, make_adapter(tiny_llama_dir, tmp_path / "adapter"))
    assert runtime.info.total_params < 1_000_000_000
    with serve(runtime) as url:
        with urllib.request.urlopen(url.rstrip("/") + "/config", timeout=60) as resp:
            config = json.load(resp)
    sliders = [c["props"] for c in config["components"]
               if c.get("type") == "slider" and "Temperature" in c["props"].get("label", "")]
    chat = [s for s in sliders if "default for a small model" in s["label"]]
    assert chat and all(s["value"] == 0.0 for s in chat), sliders
