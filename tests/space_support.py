"""Helpers shared by the Space tests: a tiny IA3 adapter, a loaded runtime, a server on
127.0.0.1 that is always closed (test_space_config checks that the helper adapter really
changes the model)."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import torch

TINY_SETTINGS = {"max_new_tokens": 12, "temperature": 0, "top_p": 1.0, "top_k": 0,
                     "repetition_penalty": 1.0}


def make_adapter(base_dir: Path, out: Path, scale: float = 1.5) -> Path:
    """An IA3 adapter on ``base_dir`` whose vectors are scaled (so it changes the outputs)."""
    from a3duck import models
    from a3duck.adapter_folder import TRAIN_CONFIG
    from a3duck.config import TrainConfig, save_config

    model, tokenizer = models.load(str(base_dir))
    peft_model = models.attach_ia3(model)
    torch.manual_seed(0)
    for name, param in peft_model.named_parameters():
        if "ia3_l" in name:
            param.data.mul_(scale + 0.5 * torch.rand_like(param))
    peft_model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_config(TrainConfig(base_model=str(base_dir)), out / TRAIN_CONFIG)
    return out


def load_runtime(base_dir: Path, adapter_dir: Path | None, **overrides):
    from a3duck.space.runtime import Runtime, ServeConfig

    torch.set_num_threads(1)  # the CI machine has 2 cores; servers run beside the test
    config = ServeConfig(base_model=str(base_dir),
                         adapter=str(adapter_dir) if adapter_dir else None, device="cpu",
                         dtype="fp32", **overrides)
    return Runtime.load(config)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(runtime, queue_size: int = 64, concurrency: int = 2):
    """Serve the Space for ``runtime`` on 127.0.0.1; yields its URL; always closes it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from a3duck.space.ui import app_routes, build_demo

    demo = build_demo(runtime)
    demo.queue(max_size=queue_size, default_concurrency_limit=concurrency)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                quiet=True, show_error=False, app_kwargs={"routes": app_routes(runtime)})
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def reference_answer(runtime, message: str, adapter_on: bool = True) -> str:
    """The answer computed in-process, serially, without the server: ``generate`` on the
    runtime's model with the chat's settings, decoded in one piece (the Space's final text)."""
    from a3duck.generation import Settings
    from a3duck.space.chat import build_chat_prompt

    prompt = build_chat_prompt(runtime.template, runtime.tokenizer, message, (), 400)
    return one_piece_answer(runtime, adapter_on, prompt.input_ids,
                            Settings.checked(**TINY_SETTINGS), runtime.template.stop_markers)


def one_piece_answer(runtime, adapter, ids, settings, markers) -> str:
    """``generate``'s answer on ``adapter`` (a name, or True/False for the default adapter /
    the base) alone, decoded in one piece and cut at the stop ``markers`` — what the Space
    shows at the end. (The tiny random model writes byte-fallback tokens, whose text a
    segment-wise streamer can decode differently, so streamed text is not the reference.)"""
    from a3duck.prompts import truncate_at_stop

    tok = runtime.tokenizer
    with runtime.session(adapter) as model, torch.inference_mode():
        out = model.generate(input_ids=torch.tensor([ids]), pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id, **settings.generate_kwargs())
    text = tok.decode(out[0, len(ids):], skip_special_tokens=True)
    return truncate_at_stop(text, tuple(markers)).rstrip()
