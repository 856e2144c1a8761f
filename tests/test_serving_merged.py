"""`a3duck serve --merge` through the official `openai` client: the merged model is listed and
answered under the adapter's name, never under the base's id (its weights are not the base's),
and adapters cannot be stacked on it at run time."""

from __future__ import annotations

import pytest
from adapter_factory import make_adapter
from serving_support import running_serve

KEY = "sk-test-merged"


@pytest.fixture(scope="module")
def merged_server(tiny_llama_dir, tmp_path_factory):
    adapter = make_adapter(tiny_llama_dir, tmp_path_factory.mktemp("m") / "duck" / "adapter",
                           base_id=str(tiny_llama_dir))
    log = tmp_path_factory.mktemp("log") / "serve.log"
    with running_serve(["--base-model", str(tiny_llama_dir), "--adapter", str(adapter),
                        "--merge", "--dtype", "fp32", "--device", "cpu"], log, KEY) as url:
        yield url


@pytest.mark.slow  # spawns a subprocess
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
