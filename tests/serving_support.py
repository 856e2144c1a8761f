"""`a3duck serve` as its users start it: a subprocess on a free port, its log in a file."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from space_support import free_port

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def running_serve(args: list[str], log: Path, key: str):
    """Start ``a3duck serve ARGS --port P`` (offline, ``A3DUCK_API_KEY=key``), wait until
    ``/v1/models`` answers, yield the ``/v1`` URL; always stopped (SIGTERM) at the end."""
    import httpx

    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", A3DUCK_API_KEY=key,
               GRADIO_ANALYTICS_ENABLED="False")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "a3duck", "serve", *args, "--port",
                                 str(port)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {key}"}
                             ).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log.read_text()
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
