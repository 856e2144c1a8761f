"""Hub and network failures get one clear message with the repo, the status and what to do,
never a traceback and never the token (tests/hub_server.py on 127.0.0.1, as in test_publish_hub.py);
a port in use is reported before the Space loads its model."""

from __future__ import annotations

import socket

import pytest
from adapter_factory import make_adapter
from hub_support import REPO, TOKEN, hub_env, push

WRONG = "hf_wrongToken0123456789abcdefghijk"


@pytest.fixture(scope="module")
def adapter(tiny_llama_dir, tmp_path_factory):
    return make_adapter(tiny_llama_dir, tmp_path_factory.mktemp("hub_err") / "adapter",
                        base_id="test-org/tiny-llama")


def error_line(proc) -> str:
    assert proc.returncode in (1, 2), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return next(line for line in proc.stderr.splitlines() if line.startswith("error: "))


@pytest.mark.slow  # spawns a subprocess
def test_rejected_token(hub, adapter, tmp_path):
    server, state = hub
    env = hub_env(tmp_path, server.base_url, token=WRONG)
    proc = push(env, "--adapter-dir", str(adapter), "--repo-id", REPO)
    line = error_line(proc)
    assert f"push to {REPO} failed before any upload: HTTP 401" in line
    assert "rejected the token" in line and "HF_TOKEN" in line
    assert WRONG not in proc.stdout + proc.stderr
    assert REPO not in state.repos


def http_error(status: int):
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    request = httpx2.Request("POST", "http://127.0.0.1:1/api/repos/create")
    response = httpx2.Response(status, request=request, json={"error": "refused"})
    return HfHubHTTPError(f"{status} Client Error for url {request.url}", response=response)


@pytest.mark.parametrize("status, words", [
    (403, f"HTTP 403: the token may not write to {REPO}"),
    (404, f"HTTP 404: {REPO} or its branch was not found; check --repo-id and --revision"),
    (401, "HTTP 401: the Hub rejected the token"),
    (500, "HTTP 500 from the Hub"),
])
def test_hub_statuses_are_explained(status, words):
    from a3duck.publish.hub import explain

    assert words in explain(http_error(status), REPO, TOKEN)


def test_unreachable_endpoint_is_explained(monkeypatch):
    import httpx2

    from a3duck.publish.hub import explain

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(httpx2.TransportError) as info:
        httpx2.get(f"{endpoint}/api/models/{REPO}", headers={"authorization": TOKEN})
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    text = explain(info.value, REPO, TOKEN)
    assert f"cannot reach {endpoint} (ConnectError)" in text and "HF_ENDPOINT" in text
    leaky = RuntimeError(f"bad header {TOKEN} and {WRONG}")
    assert TOKEN not in explain(leaky, REPO, TOKEN) and WRONG not in explain(leaky, REPO)


def test_port_in_use_is_reported_before_loading(capsys):
    from a3duck.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # The adapter does not exist: reaching the model load would give another message.
        code = main(["serve", "--host", "127.0.0.1", "--port", str(port), "--adapter",
                     "/nonexistent/adapter"])
    err = capsys.readouterr().err
    assert code != 0 and f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err, err


RESOLVE_SCRIPT = """
import sys
from a3duck import adapter_folder, models
for repo, revision in [(sys.argv[1], None), (sys.argv[1], "no-such-branch"), (sys.argv[2], None)]:
    try:
        adapter_folder.resolve(repo, revision)
    except models.ModelError as exc:
        print(exc)
"""


@pytest.mark.slow  # spawns a subprocess
def test_adapter_download_failures_say_what_to_do(hub, adapter, tmp_path):
    """A missing repo, a missing revision and a gated repo each get their own advice, through the
    CLI too, with no library arguments (``local_files_only``) in the text and never the token."""
    import subprocess
    import sys

    from hub_support import ROOT

    server, state = hub
    state.add_folder("test-org/gated-adapter", adapter)
    state.repos["test-org/gated-adapter"].gated = True
    state.add_folder("test-org/open-adapter", adapter)
    env = hub_env(tmp_path, server.base_url)
    proc = subprocess.run([sys.executable, "-c", RESOLVE_SCRIPT, "test-org/open-adapter",
                           "test-org/gated-adapter"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, proc.stdout + proc.stderr[-2000:]  # the open repo itself resolves
    assert "test-org/open-adapter has no revision 'no-such-branch' on the Hub" in lines[0]
    assert "test-org/gated-adapter is gated on the Hub: accept its terms" in lines[1]
    assert "HF_TOKEN" in lines[1]
    cli = subprocess.run([sys.executable, "-m", "a3duck", "inspect", "test-org/no-such-adapter"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
                         check=False)
    line = error_line(cli)
    assert "there is no Hub repo test-org/no-such-adapter (check the id" in line
    for text in (proc.stdout, proc.stderr, cli.stdout, cli.stderr):
        assert TOKEN not in text and "local_files_only" not in text
