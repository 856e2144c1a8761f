"""Publishing round trip against tests/hub_server.py on 127.0.0.1.

huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE once, at import (constants.py), and this
test session imports it offline; so every step that talks to the server runs in a subprocess
with its own environment: HF_ENDPOINT -> the local server, HF_HUB_OFFLINE=0, a fresh HF_HOME,
and HF_HUB_DISABLE_XET=1 (the local server speaks LFS, not Xet).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from adapter_factory import make_adapter  # tests/ is on sys.path (pytest rootdir conftest)
from hub_support import BASE_REPO, REPO, ROOT, TIMEOUT, TOKEN, hub_env, push

LOAD_SCRIPT = """
import sys, torch
from peft import AutoPeftModelForCausalLM
from a3duck.models import load
ids = torch.tensor([[1, 15, 27, 99, 140, 7, 250]])
peft_model = AutoPeftModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
model, tok = load(adapter=sys.argv[1], dtype=torch.float32)
with torch.no_grad():
    torch.save({"peft": peft_model(ids).logits, "a3duck": model(ids).logits}, sys.argv[2])
"""


@pytest.fixture
def hub_adapter(tiny_llama_dir, tmp_path) -> Path:
    return make_adapter(tiny_llama_dir, tmp_path / "adapter", base_id=BASE_REPO)


@pytest.mark.slow  # spawns a subprocess
def test_push_round_trip_loads_with_peft_and_a3duck(hub, hub_adapter, tiny_llama_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    server, state = hub
    state.add_folder(BASE_REPO, tiny_llama_dir)
    staging = tmp_path / "staged"
    proc = push(hub_env(tmp_path, server.base_url), "--adapter-dir", str(hub_adapter),
                "--repo-id", REPO, "--staging-dir", str(staging))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "uploaded in one commit" in proc.stdout and TOKEN not in proc.stdout + proc.stderr

    # The server holds exactly the staged folder, byte for byte, in one commit after creation.
    remote = state.files(REPO)
    staged = {p.relative_to(staging).as_posix(): p.read_bytes()
              for p in staging.rglob("*") if p.is_file()}
    assert {k: v for k, v in remote.items() if k != ".gitattributes"} == staged
    assert remote["adapter_model.safetensors"] == (
        hub_adapter / "adapter_model.safetensors").read_bytes()
    assert len(state.repos[REPO].commits) == 2  # the repo's initial commit + this push

    out = tmp_path / "logits.pt"
    proc = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, REPO, str(out)],
                          env=hub_env(tmp_path, server.base_url, token=None), cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = torch.load(out)

    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    local = PeftModel.from_pretrained(base, str(hub_adapter)).eval()
    with torch.no_grad():
        want = local(torch.tensor([[1, 15, 27, 99, 140, 7, 250]])).logits
        with local.disable_adapter():
            plain = local(torch.tensor([[1, 15, 27, 99, 140, 7, 250]])).logits
    assert not torch.allclose(plain, want, atol=1e-4)  # the adapter really changes the outputs
    torch.testing.assert_close(got["peft"], want, rtol=0, atol=1e-6)
    torch.testing.assert_close(got["a3duck"], want, rtol=0, atol=1e-6)


@pytest.mark.slow  # spawns a subprocess
def test_missing_token_fails_before_any_request(hub, hub_adapter, tmp_path):
    server, state = hub
    proc = push(hub_env(tmp_path, server.base_url, token=None), "--adapter-dir",
                str(hub_adapter), "--repo-id", REPO)
    assert proc.returncode == 2
    assert "no Hugging Face token" in proc.stderr and "HF_TOKEN" in proc.stderr
    assert state.requests == []


@pytest.mark.slow  # spawns a subprocess
def test_server_error_mid_upload_leaves_remote_unchanged(hub, hub_adapter, tmp_path):
    server, state = hub
    state.fail["lfs_put"] = [507]  # the weights upload fails after preupload and LFS batch
    proc = push(hub_env(tmp_path, server.base_url), "--adapter-dir", str(hub_adapter),
                "--repo-id", REPO)
    assert proc.returncode == 2, proc.stdout
    message = next(line for line in proc.stderr.splitlines() if line.startswith("error: "))
    assert message.startswith("error: upload to DopeorNope/A3_duck failed"), message
    assert "nothing was committed" in message and "unchanged" in message, message
    assert ("PUT", next(p for m, p in state.requests if m == "PUT")) in state.requests
    repo = state.repos[REPO]
    assert len(repo.commits) == 1 and set(state.files(REPO)) == {".gitattributes"}
    assert not any(p.endswith("/commit/main") for _, p in state.requests)


@pytest.mark.slow  # spawns a subprocess
def test_transient_commit_error_is_retried_into_one_commit(hub, hub_adapter, tmp_path):
    server, state = hub
    state.fail["commit"] = [503]
    proc = push(hub_env(tmp_path, server.base_url), "--adapter-dir", str(hub_adapter),
                "--repo-id", REPO, "--commit-message", "adapter v1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    commits = [p for m, p in state.requests if m == "POST" and "/commit/" in p]
    assert len(commits) == 2  # the 503 and the retry
    repo = state.repos[REPO]
    assert len(repo.commits) == 2
    assert repo.commits[repo.refs["main"]]["message"] == "adapter v1"


@pytest.mark.slow  # spawns a subprocess
def test_create_pr_leaves_main_alone(hub, hub_adapter, tmp_path):
    server, state = hub
    proc = push(hub_env(tmp_path, server.base_url), "--adapter-dir", str(hub_adapter),
                "--repo-id", REPO, "--create-pr")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "/discussions/1" in proc.stdout
    assert set(state.files(REPO)) == {".gitattributes"}
    assert "adapter_model.safetensors" in state.files(REPO, "refs/pr/1")


def test_dry_run_stages_checks_and_prints(hub_adapter, tmp_path, capsys):
    from a3duck.cli import main

    staging = tmp_path / "dry"
    assert main(["push", "--adapter-dir", str(hub_adapter), "--dry-run",
                 "--staging-dir", str(staging)]) == 0
    out = capsys.readouterr().out
    names = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    assert names == ["README.md", "a3duck_config.yaml", "adapter_config.json",
                     "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
                     "train_metrics.json"]
    size = (staging / "adapter_model.safetensors").stat().st_size
    assert f"staged folder: {staging}" in out and f"{size:,} bytes" in out
    assert "base_model: test-org/tiny-llama" in out and "library_name: peft" in out
    assert "generated by `a3duck card`" in (staging / "README.md").read_text()
    assert "dry run: nothing was uploaded" in out


def test_check_refuses_local_base_paths_and_tokens(tiny_llama_dir, tmp_path):
    from a3duck.publish import hub

    adapter = make_adapter(tiny_llama_dir, tmp_path / "local_base")  # base = a local folder
    metrics = json.loads((adapter / "train_metrics.json").read_text())
    (adapter / "train_metrics.json").write_text(json.dumps({**metrics, "note": TOKEN}))
    staged = tmp_path / "s"
    notes = hub.stage(adapter, staged, REPO)
    with pytest.raises(hub.HubError) as err:
        hub.check_staged(staged)
    text = str(err.value)
    assert "not a Hub id" in text
    assert "train_metrics.json contains what looks like an access token" in text
    # The local base path is scrubbed (named in a note), not refused; it is never uploaded.
    assert f"in adapter_config.json: {tiny_llama_dir}" in " ".join(notes)
    assert str(tiny_llama_dir) not in (staged / "adapter_config.json").read_text()
    assert TOKEN not in text


def test_staging_makes_config_paths_portable(hub_adapter, tmp_path):
    import yaml

    from a3duck.publish import hub

    cfg_path = hub_adapter / "a3duck_config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg_path.write_text(yaml.safe_dump({**cfg, "output_dir": str(tmp_path / "run"),
                                        "data": str(tmp_path / "train.jsonl")}))
    staged = tmp_path / "s"
    hub.stage(hub_adapter, staged, REPO)
    published = yaml.safe_load((staged / "a3duck_config.yaml").read_text())
    assert published["output_dir"] == "run" and published["data"] == "train.jsonl"
    hub.check_staged(staged)  # nothing left to complain about
