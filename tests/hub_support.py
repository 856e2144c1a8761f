"""The local Hub API server as a pytest fixture, and the environment and command that reach it.

huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE once, at import (constants.py), and the test
session imports it offline; so every step that talks to the server runs in a subprocess with its
own environment (``hub_env``): HF_ENDPOINT -> the local server, HF_HUB_OFFLINE=0, a fresh HF_HOME,
and HF_HUB_DISABLE_XET=1 (the local server speaks LFS, not Xet).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_server import serve

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_localTestToken0123456789abcdefXYZ"
REPO = "DopeorNope/A3_duck"
BASE_REPO = "test-org/tiny-llama"
TIMEOUT = 300  # seconds per subprocess: bounded even if something hangs



@pytest.fixture
def hub():
    server, state = serve(TOKEN)
    try:
        yield server, state
    finally:
        server.shutdown()
        server.server_close()


def hub_env(tmp_path: Path, endpoint: str, token: str | None = TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_TOKEN", "HF_TOKEN_PATH", "HUGGING_FACE_HUB_TOKEN")}
    home = tmp_path / f"hf_home_{len(list(tmp_path.glob('hf_home_*')))}"
    env.update(HF_ENDPOINT=endpoint, HF_HUB_OFFLINE="0", HF_HOME=str(home),
               HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1")
    if token:
        env["HF_TOKEN"] = token
    return env


def push(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "push_to_hub.py"), *args], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False)
