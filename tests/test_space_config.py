"""Space configuration, merged vs toggleable adapter, the About panel, handler errors."""

from __future__ import annotations

import pytest
import torch
from space_support import load_runtime, make_adapter

from a3duck.errors import A3DuckError
from a3duck.hub_defaults import SPACE_ADAPTER, SPACE_BASE_MODEL
from a3duck.space.handlers import about_markdown, chat_handler, compare_handler
from a3duck.space.runtime import ServeConfig


@pytest.fixture
def clean_env(monkeypatch):
    for var in ("A3DUCK_BASE_MODEL", "A3DUCK_ADAPTER", "GRADIO_SERVER_PORT",
                "GRADIO_SERVER_NAME", "SPACE_ID"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_flags_override_environment_override_defaults(clean_env):
    assert ServeConfig.resolve() == ServeConfig()  # local, no GPU Space: embedded default
    clean_env.setenv("A3DUCK_ADAPTER", "some/adapter")
    clean_env.setenv("GRADIO_SERVER_PORT", "7999")
    cfg = ServeConfig.resolve(port=None, base_model="b/base")
    assert (cfg.adapter, cfg.port, cfg.base_model) == ("some/adapter", 7999, "b/base")
    assert ServeConfig.resolve(adapter="none").adapter is None
    assert ServeConfig.resolve(port=8001).port == 8001
    clean_env.setenv("GRADIO_SERVER_PORT", "http")
    with pytest.raises(A3DuckError, match="port must be a number"):
        ServeConfig.resolve()


def test_gpu_space_defaults_to_the_published_release(clean_env):
    clean_env.setenv("SPACE_ID", "someone/a3duck")
    clean_env.setattr(torch.cuda, "is_available", lambda: True)
    cfg = ServeConfig.resolve()
    assert (cfg.base_model, cfg.adapter, cfg.host) == (SPACE_BASE_MODEL, SPACE_ADAPTER,
                                                        "0.0.0.0")
    assert ServeConfig.resolve(adapter="none").base_model is None  # explicit choice wins


@pytest.fixture(scope="module")
def adapter_dir(tiny_llama_dir, tmp_path_factory):
    return make_adapter(tiny_llama_dir, tmp_path_factory.mktemp("serving") / "my-adapter")


def test_merged_adapter_answers_like_the_adapter_but_cannot_toggle(tiny_llama_dir, adapter_dir):
    toggle = load_runtime(tiny_llama_dir, adapter_dir)
    merged = load_runtime(tiny_llama_dir, adapter_dir, merge=True)
    ids = torch.tensor([[1, 20, 30, 40, 50]])
    with toggle.session(True) as m1, merged.session(True) as m2:
        torch.testing.assert_close(m1(input_ids=ids).logits, m2(input_ids=ids).logits,
                                   rtol=1e-4, atol=1e-4)
    assert toggle.can_toggle and not merged.can_toggle and merged.info.merged
    with pytest.raises(A3DuckError, match="merged into the base weights"), merged.session(False):
        pass
    assert "merged" in about_markdown(merged)


def test_about_panel_names_what_runs(tiny_llama_dir, adapter_dir):
    rt = load_runtime(tiny_llama_dir, adapter_dir)
    text = about_markdown(rt)
    assert "`my-adapter`" in text and str(adapter_dir) not in text  # no local paths on screen
    assert f"{rt.info.trainable_params:,}" in text and "context window 512" in text
    assert "Last answer:** none yet" in text
    list(chat_handler(rt)("hi", [], 4, 0, 1, 0, 1, True))
    assert "tokens/s" in about_markdown(rt)
    base_only = load_runtime(tiny_llama_dir, None)
    assert "none (base model alone)" in about_markdown(base_only)
    assert not base_only.can_toggle
    # The About panel shows the IA3 heatmap (drawn from the adapter file when not shipped).
    assert rt.info.ia3_plot and open(rt.info.ia3_plot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert base_only.info.ia3_plot is None
    from a3duck.space.ui import build_demo

    config = build_demo(rt).get_config_file()
    assert any(c.get("props", {}).get("elem_id") == "ia3-plot" for c in config["components"])


def test_handlers_raise_gradio_errors_not_tracebacks(tiny_llama_dir, adapter_dir):
    import gradio as gr

    rt = load_runtime(tiny_llama_dir, None)
    with pytest.raises(gr.Error, match="empty"):
        list(chat_handler(rt)("  ", [], 4, 0, 1, 0, 1, True))
    with pytest.raises(gr.Error, match="No adapter is loaded"):
        list(compare_handler(rt)("Say hi", "", 4, 0))
    with pytest.raises(gr.Error, match="temperature must be between"):
        list(chat_handler(rt)("hi", [], 4, 3.5, 1, 0, 1, True))
    # and the next request still works
    answer, status = list(chat_handler(rt)("hi", [], 4, 0, 1, 0, 1, True))[-1]
    assert answer and "tokens/s" in status


def test_chat_tab_names_where_answers_stop_for_its_template():
    """The Chat tab's line says the served template's own stop markers (none for chat)."""
    from dataclasses import replace

    from a3duck.prompts import get_template
    from a3duck.space.ui import _stops

    alpaca = get_template("alpaca")
    assert _stops(alpaca).endswith("`### Instruction` or `### Input:` or `### Response:`")
    assert _stops(replace(alpaca, stop_markers=())) == "the end of the model's turn (end-of-text)"


def test_helper_adapter_changes_the_logits(tiny_llama_dir, tmp_path):
    runtime = load_runtime(tiny_llama_dir, make_adapter(tiny_llama_dir, tmp_path / "ad"))
    ids = torch.tensor([[1, 5, 6, 7]])
    with runtime.session(True) as model:
        on = model(input_ids=ids).logits
    with runtime.session(False) as model:
        off = model(input_ids=ids).logits
    with runtime.session(True) as model:
        again = model(input_ids=ids).logits
    assert not torch.allclose(on, off)
    torch.testing.assert_close(on, again)
    from a3duck import models

    peft_model, _ = models.load(str(tiny_llama_dir), str(tmp_path / "ad"))
    assert runtime.info.trainable_params == sum(
        p.numel() for n, p in peft_model.named_parameters() if "ia3_" in n) > 0
