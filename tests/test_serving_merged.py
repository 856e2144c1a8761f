"""`a3duck serve --merge` through the official `openai` client: the merged model is listed and
answered under the adapter's name, never under the base's id (its weights are not the base's),
and adapters cannot be stacked on it at run time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from adapter_factory import make_adapter
from test_space_helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-test-merged"


@pytest.fixture(scope="module")
def merged_server(tiny_llama_dir, tmp_path_factory):
    import httpx

    adapter = make_adapter(tiny_llama_dir, tmp_path_factory.mktemp("m") / "duck" / "adapter",
                           base_id=str(tiny_llama_dir))
    port, log = free_port(), tmp_path_factory.mktemp("log") / "serve.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", A3DUCK_API_KEY=KEY,
               GRADIO_ANALYTICS_ENABLED="False")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "a3duck", "serve", "--base-model",
                                 str(tiny_llama_dir), "--adapter", str(adapter), "--merge",
                                 "--dtype", "fp32", "--device", "cpu", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}
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


def test_merged_model_is_served_under_the_adapters_name_only(merged_server):
    import openai

    client = openai.OpenAI(base_url=merged_server, api_key=KEY, max_retries=0, timeout=120)
    rows = client.models.list().data
    assert [m.id for m in rows] == ["duck"]  # the run folder's name (adapter_names)
    answer = client.completions.create(model="duck", prompt="Hello", max_tokens=3,
                                       temperature=0)
    assert answer.usage.completion_tokens >= 1
    with pytest.raises(openai.NotFoundError, match="the base model alone is not served here: "
                                                   "adapter 'duck' is merged"):
        client.completions.create(model="base", prompt="Hello", max_tokens=1)
    with pytest.raises(openai.BadRequestError, match="cannot be added to a merged model"):
        client.post("/admin/adapters", body={"name": "x", "path": "/nowhere"}, cast_to=object)
