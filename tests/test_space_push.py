"""`a3duck space push`: the staged Space (offline dry run) and the round trip against the local
Hub API server (tests/hub_server.py): the server stores exactly the staged tree in one commit,
and a second push of the same Space makes no commit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from adapter_factory import make_adapter
from hub_support import BASE_REPO, TIMEOUT, TOKEN, hub_env

ROOT = Path(__file__).resolve().parents[1]
SPACE = "me/a3duck-space"
ADAPTER_REPO = "me/tiny-ia3"


def front_matter(folder: Path) -> dict:
    return yaml.safe_load((folder / "README.md").read_text(encoding="utf-8").split("---\n")[1])


def space_push(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "a3duck", "space", "push", *args], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*") if p.is_file()}


def test_dry_run_stages_a_runnable_space_offline(tmp_path, capsys):
    import gradio

    from a3duck.cli import main

    staged = tmp_path / "space"
    assert main(["space", "push", "--space-id", SPACE, "--dry-run", "--staging-dir",
                 str(staged), "--adapter", "me/a", "--adapter", "me/b"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing was uploaded" in out and "suggested_hardware: zero-a10g" in out
    assert out.startswith("the Space will load meta-llama/Llama-2-13b-hf with adapters me/a, "
                          "me/b on zero-a10g\n")
    top = sorted(p.name for p in staged.iterdir())
    assert top == ["README.md", "a3duck", "a3duck_space.yaml", "app.py", "requirements.txt"]
    assert (staged / "app.py").read_bytes() == (ROOT / "app.py").read_bytes()
    assert (staged / "a3duck/space/ui.py").read_bytes() == (ROOT / "a3duck/space/ui.py").read_bytes()
    assert not list(staged.rglob("__pycache__"))
    meta = front_matter(staged)
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__
    assert meta["app_file"] == "app.py" and meta["python_version"] == "3.10"  # ZeroGPU's
    assert meta["models"] == ["meta-llama/Llama-2-13b-hf", "me/a", "me/b"]
    assert meta["preload_from_hub"] == meta["models"] and len(meta["short_description"]) <= 60
    assert meta["license"] == "mit" and "mcp-server" in meta["tags"]
    config = yaml.safe_load((staged / "a3duck_space.yaml").read_text())
    assert config == {"base_model": "meta-llama/Llama-2-13b-hf", "adapters": ["me/a", "me/b"],
                      "revision": None, "mcp": True}
    reqs = (staged / "requirements.txt").read_text().splitlines()
    assert f"gradio[mcp]=={gradio.__version__}" in reqs and "pydantic==2.12.5" in reqs
    assert any(r.startswith("spaces==") for r in reqs) and any(r.startswith("torch==") for r in reqs)
    assert all("==" in r and "+" not in r for r in reqs)  # pinned, no local build labels
    # The repository's own pins agree with what the Space installs.
    repo_pins = {line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text()
                 .splitlines()}
    assert {r for r in reqs if r.split("==")[0] in ("gradio[mcp]", "spaces", "mcp", "pydantic")
            } <= repo_pins


def test_a_local_adapter_folder_is_refused_with_what_to_do(tmp_path, capsys, monkeypatch):
    """``out/adapter`` looks like OWNER/NAME: it was staged as a Hub id a Space cannot load."""
    from a3duck.cli import main

    (tmp_path / "out" / "adapter").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert main(["space", "push", "--space-id", SPACE, "--dry-run", "--adapter",
                 "out/adapter"]) == 2
    err = capsys.readouterr().err
    assert ("--adapter 'out/adapter' is a local folder, but a Space loads its models from the "
            "Hub: upload it first (`a3duck push FOLDER --repo-id OWNER/NAME`), then pass "
            "--adapter OWNER/NAME") in err
    assert main(["space", "push", "--space-id", SPACE, "--dry-run"]) == 0
    assert "(the published defaults: pass --base-model and --adapter" in capsys.readouterr().out


def test_dedicated_hardware_front_matter_and_bad_ids(tmp_path):
    from a3duck.publish import space_repo
    from a3duck.publish.hub import HubError

    spec = space_repo.SpaceSpec(SPACE, hardware="a100-large")
    staged, _ = space_repo.stage_space(spec, str(tmp_path / "s"))
    meta = front_matter(staged)
    assert meta["suggested_hardware"] == "a100-large" and meta["python_version"] == "3.11"
    assert meta["startup_duration_timeout"] == "1h"
    with pytest.raises(HubError, match="one adapter's revision"):
        space_repo.stage_space(space_repo.SpaceSpec(SPACE, adapters=["o/a", "o/b"], revision="v1"),
                               str(tmp_path / "r"))
    with pytest.raises(HubError, match="not a Hub id.*not a Space hardware"):
        space_repo.stage_space(space_repo.SpaceSpec(SPACE, adapters=["/tmp/x/adapter"],
                                                    hardware="h100"), str(tmp_path / "t"))


def test_check_refuses_tokens_and_a_missing_app(tmp_path):
    from a3duck.publish import space_repo
    from a3duck.publish.hub import HubError

    spec = space_repo.SpaceSpec(SPACE)
    staged, _ = space_repo.stage_space(spec, str(tmp_path / "s"))
    (staged / "a3duck_space.yaml").write_text(f"base_model: x/y\nnote: {TOKEN}\n")
    (staged / "app.py").unlink()
    with pytest.raises(HubError) as err:
        space_repo.check_space(staged, spec)
    assert "app.py is missing" in str(err.value)
    (staged / "app.py").write_text("import a3duck\n")
    with pytest.raises(HubError) as err:
        space_repo.check_space(staged, spec)
    assert "a3duck_space.yaml contains what looks like an access token" in str(err.value)
    assert TOKEN not in str(err.value)


@pytest.mark.slow  # spawns a subprocess
def test_round_trip_then_unchanged_push_makes_no_commit(hub, tiny_llama_dir, tmp_path):
    server, state = hub
    state.add_folder(BASE_REPO, tiny_llama_dir)
    state.add_folder(ADAPTER_REPO, make_adapter(tiny_llama_dir, tmp_path / "ad", base_id=BASE_REPO))
    env = hub_env(tmp_path, server.base_url)
    args = ["--space-id", SPACE, "--base-model", BASE_REPO, "--adapter", ADAPTER_REPO,
            "--hardware", "cpu-basic"]
    proc = space_push(env, *args, "--staging-dir", str(tmp_path / "one"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "uploaded in one commit" in proc.stdout and TOKEN not in proc.stdout + proc.stderr

    remote = state.files(SPACE)
    assert {k: v for k, v in remote.items() if k != ".gitattributes"} == tree(tmp_path / "one")
    repo = state.repos[SPACE]
    assert len(repo.commits) == 2  # the Space's initial commit + this push
    preload = front_matter(tmp_path / "one")["preload_from_hub"]
    base_files = sorted(p.name for p in tiny_llama_dir.iterdir() if p.suffix in (
        ".json", ".safetensors", ".model", ".txt"))
    assert preload == [f"{BASE_REPO} {','.join(base_files)}", ADAPTER_REPO]

    proc = space_push(env, *args, "--staging-dir", str(tmp_path / "two"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
    assert len(repo.commits) == 2  # nothing changed: no commit
    assert sum(m == "POST" and p.endswith("/commit/main") for m, p in state.requests) == 1


@pytest.mark.slow  # spawns a subprocess
def test_missing_adapter_repo_is_refused_before_upload(hub, tiny_llama_dir, tmp_path):
    server, state = hub
    state.add_folder(BASE_REPO, tiny_llama_dir)
    proc = space_push(hub_env(tmp_path, server.base_url), "--space-id", SPACE, "--base-model",
                      BASE_REPO, "--adapter", "me/nothing-here")
    assert proc.returncode == 2  # a user error (a3duck.cli)
    assert "not on the Hub" in proc.stderr and "me/nothing-here" in proc.stderr
    assert SPACE not in state.repos
