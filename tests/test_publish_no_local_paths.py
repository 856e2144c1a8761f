"""Publishing never leaks a local path: every staged text file is scrubbed (with a note), only
regular allow-listed files inside the adapter folder are staged, the repo id is checked before
staging, and a dry run leaves nothing behind in the temporary folder."""

from __future__ import annotations

import json
import tempfile

import pytest
import yaml
from adapter_factory import make_adapter

from a3duck.cli import main
from a3duck.files import find_local_paths

REPO = "DopeorNope/A3_duck"


@pytest.fixture(scope="module")
def clean_adapter(tiny_llama_dir, tmp_path_factory):
    return make_adapter(tiny_llama_dir, tmp_path_factory.mktemp("pub") / "adapter",
                        base_id="test-org/tiny-llama")


@pytest.fixture
def adapter(clean_adapter, tmp_path):
    import shutil

    return shutil.copytree(clean_adapter, tmp_path / "adapter")


def staged_files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_every_staged_text_file_is_scrubbed_with_a_note(adapter, tmp_path, capsys):
    secret = tmp_path / "private" / "home"
    config = yaml.safe_load((adapter / "a3duck_config.yaml").read_text())
    config.update(output_dir=f"{secret}/runs/r1", data=f"{secret}/data/train.jsonl")
    (adapter / "a3duck_config.yaml").write_text(yaml.safe_dump(config))
    (adapter / "data_report.json").write_text(json.dumps({"source": f"{secret}/train.jsonl",
                                                          "total_rows": 3, "kept": 3}))
    tok = json.loads((adapter / "tokenizer_config.json").read_text())
    (adapter / "tokenizer_config.json").write_text(json.dumps({**tok,
                                                               "name_or_path": "/srv/m/llama"}))
    staging = tmp_path / "staged"
    assert main(["push", "--adapter-dir", str(adapter), "--repo-id", REPO, "--dry-run",
                 "--staging-dir", str(staging)]) == 0
    out = capsys.readouterr().out
    for rel in staged_files(staging):
        text = (staging / rel).read_bytes().decode("utf-8", "replace")
        assert find_local_paths(text) == [] and str(tmp_path) not in text, rel
    published = yaml.safe_load((staging / "a3duck_config.yaml").read_text())
    assert (published["output_dir"], published["data"]) == ("r1", "train.jsonl")
    assert json.loads((staging / "tokenizer_config.json").read_text())["name_or_path"] == "llama"
    for rel in ("a3duck_config.yaml", "data_report.json", "tokenizer_config.json"):
        assert f"note: local path(s) replaced by their file names in {rel}" in out
    assert "train.jsonl (a local file)" in (staging / "README.md").read_text()


def test_only_regular_allow_listed_files_inside_the_folder(adapter, tmp_path, capsys):
    outside = tmp_path / "outside.json"
    outside.write_text('{"secret": "ssh key"}')
    (adapter / "added_tokens.json").symlink_to(outside)  # an allow-listed name, a link out
    (adapter / "plots").mkdir()
    (adapter / "plots" / "ia3.png").write_bytes(b"\x89PNG")
    (adapter / "plots" / "deep").mkdir()
    (adapter / "plots" / "deep" / "x.png").write_bytes(b"\x89PNG")
    (adapter / "plots" / "linked.png").symlink_to(outside)
    (adapter / "checkpoint-4").mkdir()
    (adapter / "checkpoint-4" / "README.md").write_text("never uploaded")
    staging = tmp_path / "staged"
    assert main(["push", "--adapter-dir", str(adapter), "--dry-run",
                 "--staging-dir", str(staging)]) == 0
    out = capsys.readouterr().out
    assert staged_files(staging) == [
        "README.md", "a3duck_config.yaml", "adapter_config.json", "adapter_model.safetensors",
        "plots/ia3.png", "tokenizer.json", "tokenizer_config.json", "train_metrics.json"]
    assert "note: not uploaded: added_tokens.json (a symbolic link" in out
    assert "note: not uploaded: plots/linked.png (a symbolic link" in out
    assert "ssh key" not in "".join((staging / f).read_bytes().decode("latin-1")
                                    for f in staged_files(staging))


def test_dry_run_leaves_no_staging_folder(adapter, tmp_path, monkeypatch, capsys):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert main(["push", "--adapter-dir", str(adapter), "--dry-run"]) == 0
    assert "the temporary staging folder was removed" in capsys.readouterr().out
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize("repo_id", ["not a repo", "owner/name/extra", "-owner/x", "owner/x..y",
                                     "just-a-name", "owner/" + "x" * 100])
def test_invalid_repo_id_is_refused_before_staging(adapter, tmp_path, capsys, repo_id):
    staging = tmp_path / "staged"
    assert main(["push", "--adapter-dir", str(adapter), f"--repo-id={repo_id}", "--dry-run",
                 "--staging-dir", str(staging)]) != 0
    err = capsys.readouterr().err
    assert f"invalid --repo-id {repo_id!r}" in err and "Traceback" not in err
    assert not staging.exists()
    assert main(["card", "--adapter", str(adapter), f"--repo-id={repo_id}"]) != 0
    assert f"invalid --repo-id {repo_id!r}" in capsys.readouterr().err


def test_tokenizer_vocabulary_is_published_verbatim(adapter, tmp_path):
    """A vocabulary entry that looks like a path is a token, not a leak: rewriting it would
    publish another tokenizer than the one trained with."""
    from a3duck.publish import hub

    tok = json.loads((adapter / "tokenizer.json").read_text())
    tok["added_tokens"] = [*tok.get("added_tokens", []), {
        "id": 399, "content": "/usr/lib/x", "single_word": False, "lstrip": False,
        "rstrip": False, "normalized": False, "special": False}]
    (adapter / "tokenizer.json").write_text(json.dumps(tok))
    staged = tmp_path / "s"
    hub.stage(adapter, staged, REPO)
    assert (staged / "tokenizer.json").read_bytes() == (adapter / "tokenizer.json").read_bytes()
    hub.check_staged(staged)


def _png_with_text(path, chunks: list[tuple[bytes, bytes]]):
    """A real 1x1 PNG (Pillow) with extra text chunks written the way the PNG spec says."""
    import struct
    import zlib

    from PIL import Image

    Image.new("RGB", (1, 1)).save(path)
    data = path.read_bytes()
    end = data.rindex(b"IEND") - 4
    extra = b"".join(struct.pack(">I", len(body)) + kind + body
                     + struct.pack(">I", zlib.crc32(kind + body)) for kind, body in chunks)
    path.write_bytes(data[:end] + extra + data[end:])


@pytest.mark.parametrize("kind", ["tEXt", "zTXt", "iTXt"])
def test_secrets_in_staged_png_metadata_are_refused(adapter, tmp_path, capsys, kind):
    import zlib

    secret = "hf_" + "A" * 34
    text = f"uploaded with token {secret} from /home/alice/runs".encode()
    body = {"tEXt": b"Comment\0" + text, "zTXt": b"Comment\0\0" + zlib.compress(text),
            "iTXt": b"Comment\0\1\0\0\0" + zlib.compress(text)}[kind]
    (adapter / "plots").mkdir(exist_ok=True)
    _png_with_text(adapter / "plots" / "ia3_heatmap.png", [(kind.encode(), body)])
    assert main(["push", "--adapter-dir", str(adapter), "--repo-id", REPO, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "plots/ia3_heatmap.png contains what looks like an access token" in err
    assert secret not in err


def test_a_clean_png_and_weights_metadata_pass(adapter, capsys):
    (adapter / "plots").mkdir(exist_ok=True)
    _png_with_text(adapter / "plots" / "ia3_heatmap.png",
                   [(b"tEXt", b"Software\0Matplotlib version3.10")])
    assert main(["push", "--adapter-dir", str(adapter), "--repo-id", REPO, "--dry-run"]) == 0
