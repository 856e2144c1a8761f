"""A Space whose base is gated (no HF_TOKEN secret) or whose adapter repo does not exist starts
and shows one banner saying what to set and where. The app runs from a dry-run staged folder
(`python app.py`, as on a Space) against the local Hub API server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest
from adapter_factory import make_adapter
from hub_support import BASE_REPO, hub_env
from space_support import free_port

ADAPTER_REPO = "me/tiny-ia3"


def stage(tmp_path, adapter: str):
    from a3duck.publish.space_repo import SpaceSpec, stage_space

    staged, _ = stage_space(SpaceSpec("me/space", base_model=BASE_REPO, adapters=[adapter],
                                      hardware="cpu-basic"), str(tmp_path / "space"))
    return staged


def page_banner(staged, env) -> str:
    """Start app.py in ``staged``; return the banner's text from Gradio's /config."""
    port = free_port()
    env = {**env, "GRADIO_ANALYTICS_ENABLED": "False", "SPACE_ID": "me/space"}  # as on a Space
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=staged,
                            env={k: v for k, v in env.items() if k != "PYTHONPATH"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as r:
                    config = json.load(r)
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail(f"app.py did not start (exit {proc.poll()}): {proc.stdout.read()[-3000:]}")
        banners = [c["props"]["value"] for c in config["components"]
                   if c.get("props", {}).get("elem_id") == "banner"]
        assert len(banners) == 1, config["components"]
        return banners[0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow  # spawns a subprocess
def test_gated_base_without_token_shows_what_to_set(hub, tiny_llama_dir, tmp_path):
    server, state = hub
    state.add_folder(BASE_REPO, tiny_llama_dir)
    state.repos[BASE_REPO].gated = True
    state.add_folder(ADAPTER_REPO, make_adapter(tiny_llama_dir, tmp_path / "ad",
                                                base_id=BASE_REPO))
    banner = page_banner(stage(tmp_path, ADAPTER_REPO), hub_env(tmp_path, server.base_url,
                                                                 token=None))
    assert f"The base model `{BASE_REPO}` is gated" in banner
    assert "secret named `HF_TOKEN`" in banner and "Variables and secrets" in banner
    assert f"https://huggingface.co/{BASE_REPO}" in banner


@pytest.mark.slow  # spawns a subprocess
def test_missing_adapter_repo_shows_what_to_fix(hub, tiny_llama_dir, tmp_path):
    server, state = hub
    state.add_folder(BASE_REPO, tiny_llama_dir)
    banner = page_banner(stage(tmp_path, "me/not-there"),
                         hub_env(tmp_path, server.base_url, token=None))
    assert "The adapter repo `me/not-there` does not exist on the Hub" in banner
    assert "a3duck_space.yaml" in banner and "A3DUCK_ADAPTER" in banner
