"""Every endpoint of the running Space, through its public API (gradio_client, 127.0.0.1): the
published names stay, every parameter after the first has a default, each endpoint answers a
valid call with only its first argument, and an invalid call gets one clear error (never a
traceback); few-shot requests have bounded cost, the limit named in the message."""

from __future__ import annotations

import json

import pytest
from space_support import load_runtime, make_adapter, serve

pytestmark = pytest.mark.slow

PUBLISHED = {  # endpoint -> parameter names, in order (docs/space.md lists them)
    "/chat": ["message", "max_new_tokens", "temperature", "top_p", "top_k",
              "repetition_penalty", "adapter_on", "adapter"],
    "/fewshot_score": ["task", "item_text", "adapter_on", "adapter"],
    "/fewshot_generate": ["prompt_text", "max_new_tokens", "stop_at", "adapter_on", "adapter"],
    "/compare": ["instruction", "context", "max_new_tokens", "temperature", "chosen"],
}
TINY = {"max_new_tokens": 4}  # keeps every generation short on the tiny model


def _item(n_choices: int, choice: str = "yes", question: str = "Is it?") -> str:
    doc = {"question": question, "choices": {"text": [f"{choice} {i}" for i in range(n_choices)],
                                             "label": [chr(65 + i % 26) + str(i)
                                                       for i in range(n_choices)]},
           "answerKey": "A0"}
    return json.dumps({"shots": [], "doc": doc})


# endpoint -> (valid call, invalid call, words of the expected error)
CALLS = {
    "/chat": ((["Say hi."], TINY), ([""], TINY), "empty"),
    "/fewshot_score": ((["arc_challenge"], {}), (["arc_challenge", "{not json"], {}),
                       "not valid json"),
    "/fewshot_generate": ((["Question: 2+2?\nAnswer:"], TINY), (["  "], TINY), "empty"),
    "/compare": ((["Name a colour."], TINY), (["", "ctx"], TINY), "empty"),
}


@pytest.fixture(scope="module")
def client(tiny_llama_dir, tmp_path_factory):
    from gradio_client import Client

    adapter = make_adapter(tiny_llama_dir, tmp_path_factory.mktemp("rel_space") / "adapter")
    with serve(load_runtime(tiny_llama_dir, adapter)) as url:
        yield Client(url, verbose=False)


@pytest.fixture(scope="module")
def api(client):
    return client.view_api(return_format="dict", print_info=False)["named_endpoints"]


def test_published_names_and_defaults(api):
    for name, params in PUBLISHED.items():
        assert [p["parameter_name"] for p in api[name]["parameters"]] == params, name
    assert set(api) <= set(CALLS), "a new endpoint needs a valid and an invalid call here"
    for name, endpoint in api.items():
        later = endpoint["parameters"][1:]
        assert all(p["parameter_has_default"] for p in later), (name, later)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_endpoint_answers_a_valid_call(client, api, name):
    (args, kwargs), _, _ = CALLS[name]
    kwargs = {k: v for k, v in kwargs.items()
              if k in {p["parameter_name"] for p in api[name]["parameters"]}}
    result = client.predict(*args, **kwargs, api_name=name)
    first = result[0] if isinstance(result, (list, tuple)) else result
    if name == "/fewshot_score":  # (prompt, probabilities, table, verdict)
        assert "Question:" in first and "Chosen (acc_norm)" in result[3]
        # one notion of probability: the label's and the table's are the same numbers
        label = {c["label"]: c["confidence"] for c in result[1]["confidences"]}
        rows = result[2]["data"]
        assert [round(label[f"{r[0]}: {r[1]}"], 4) for r in rows] == [r[4] for r in rows]
    else:
        assert isinstance(first, str) and first.strip()


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_endpoint_names_an_invalid_input(client, api, name):
    _, (args, kwargs), words = CALLS[name]
    kwargs = {k: v for k, v in kwargs.items()
              if k in {p["parameter_name"] for p in api[name]["parameters"]}}
    with pytest.raises(Exception) as info:
        client.predict(*args, **kwargs, api_name=name)
    text = str(info.value).lower()
    assert words in text and "traceback" not in text, text


def test_invalid_inputs_log_one_line_not_a_traceback(client, api, capfd, caplog):
    """Gradio printed a ~30-line traceback in the server's terminal for each visitor's mistake:
    now each is one "request refused: ..." line, and nothing else reaches stderr."""
    import logging

    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="a3duck.space.handlers"):
        for name in sorted(CALLS):
            _, (args, kwargs), words = CALLS[name]
            kwargs = {k: v for k, v in kwargs.items()
                      if k in {p["parameter_name"] for p in api[name]["parameters"]}}
            with pytest.raises(Exception) as info:
                client.predict(*args, **kwargs, api_name=name)
            assert words in str(info.value).lower()
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    refused = [r for r in caplog.records if r.getMessage().startswith("request refused: ")]
    assert len(refused) == len(CALLS), caplog.text


def test_fewshot_generate_wiring_uses_max_new_tokens_and_stop(client):
    """The bug: the UI passed stop_at where the handler takes max_new_tokens."""
    answer = client.predict("Q: hi\nA:", 3, "\n", True, api_name="/fewshot_generate")
    assert isinstance(answer, str) and answer.strip()
    with pytest.raises(Exception) as info:
        client.predict("Q: hi\nA:", 3, "STOP", True, api_name="/fewshot_generate")
    assert "stop" in str(info.value).lower()  # Gradio's Radio or our check names it


@pytest.mark.parametrize("item, words", [
    (_item(200), "at most 20 are scored"),
    (_item(4, choice="y" * 600), "at most 500 per choice"),
])
def test_fewshot_cost_is_bounded_and_named(client, item, words):
    with pytest.raises(Exception) as info:
        client.predict("arc_challenge", item, True, api_name="/fewshot_score")
    assert words in str(info.value), str(info.value)


def test_fewshot_prompt_tokens_are_bounded():
    from a3duck.errors import InputError
    from a3duck.space.scoring import MAX_PROMPT_TOKENS, check_cost

    def tokenizer(text):  # one token per character
        return {"input_ids": list(text)}

    check_cost(tokenizer, "x" * MAX_PROMPT_TOKENS, ["a"])
    with pytest.raises(InputError, match=f"at most {MAX_PROMPT_TOKENS:,} .MAX_PROMPT_TOKENS"):
        check_cost(tokenizer, "x" * (MAX_PROMPT_TOKENS + 1), ["a"])
