"""`a3duck serve --mcp`: the Space's endpoints are MCP tools. An MCP client lists them through
Gradio's MCP endpoint (docstrings and typed parameters) and calls the few-shot scorer once on
the embedded SmolLM2; the result equals the in-process score."""

from __future__ import annotations

import ast
import asyncio
import json
import os

import pytest
from space_support import free_port, load_runtime

ITEM = {"task": "arc_challenge", "index": 0, "k": 1}


async def _list_and_score(url: str, item_text: str):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(url) as (read, write, _), \
            ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        result = await session.call_tool("fewshot_score", {
            "task": "arc_challenge", "item_text": item_text, "adapter_on": True})
    return tools, result


@pytest.mark.slow
def test_tools_are_listed_and_the_scorer_answers(embedded_model_dir):
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from a3duck.space.scoring import item_json, score_item
    from a3duck.space.ui import build_demo

    rt = load_runtime(embedded_model_dir, None)
    demo = build_demo(rt)
    demo.queue(max_size=8, default_concurrency_limit=1)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                mcp_server=True)
    item_text = item_json(ITEM["task"], ITEM["index"], ITEM["k"])
    try:
        tools, result = asyncio.run(_list_and_score(
            f"http://127.0.0.1:{port}/gradio_api/mcp/", item_text))
    finally:
        demo.close()

    assert {"chat", "fewshot_score", "fewshot_generate", "compare"} <= set(tools), set(tools)
    score = tools["fewshot_score"]
    assert score.description.startswith("Score a multiple-choice item the way the Open LLM")
    props = score.inputSchema["properties"]
    assert props["task"]["type"] == "string" and props["adapter_on"]["type"] == "boolean"
    assert "benchmark format" in props["task"]["description"]
    assert props["item_text"]["description"].startswith("JSON")
    compare = tools["compare"].inputSchema["properties"]
    assert compare["max_new_tokens"]["type"] == "number"

    assert not result.isError, result.content
    # Gradio returns the four outputs (prompt, label, table, verdict) as one text: their repr.
    prompt, label, _table, verdict = ast.literal_eval(result.content[0].text)
    shots, doc = json.loads(item_text)["shots"], json.loads(item_text)["doc"]
    want = score_item(rt, "arc_challenge", shots, doc)
    assert prompt == want.context  # the prompt the evaluation builds
    assert f"Chosen ({want.metric}): {want.chosen}" in verdict
    best = max(label["confidences"], key=lambda c: c["confidence"])
    assert best["label"].startswith(f"{want.chosen}:")
    assert best["confidence"] == pytest.approx(max(want.metric_probabilities), abs=1e-4)


def test_mcp_switch_flag_env_and_space_file(tmp_path, monkeypatch):
    import argparse

    from a3duck.hub_defaults import SPACE_CONFIG_FILE
    from a3duck.space.runtime import ServeConfig
    from a3duck.space.serve import add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    monkeypatch.delenv("A3DUCK_MCP", raising=False)
    assert not config_from_args(parser.parse_args([])).mcp
    assert config_from_args(parser.parse_args(["--mcp"])).mcp
    monkeypatch.setenv("A3DUCK_MCP", "1")
    assert config_from_args(parser.parse_args([])).mcp
    monkeypatch.delenv("A3DUCK_MCP")
    space = tmp_path / SPACE_CONFIG_FILE
    space.write_text("base_model: o/base\nadapters: [o/a, o/b]\nmcp: true\n")
    config = ServeConfig.resolve(space)  # every adapter listed is served: a zoo
    assert (config.base_model, config.adapter, config.revision, config.mcp) == (
        "o/base", "o/a,o/b", None, True)
    space.write_text("adapters: [o/a]\nrevision: v1\n")
    config = ServeConfig.resolve(space)
    assert (config.adapter, config.revision, config.mcp) == ("o/a", "v1", False)
    monkeypatch.setenv("A3DUCK_ADAPTER", "none")  # the Space's variables override its file
    assert ServeConfig.resolve(space).adapter is None
