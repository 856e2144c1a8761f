"""The Space's front matter (in the README that `a3duck space push` stages, not the repository's
README, which is no Space config: pushed as is it would upload tests and docs) agrees with the
code: pinned Gradio version, entry point, models; the repository's app.py is the staged one."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), f"{path} must start with the Space's YAML front matter"
    return yaml.safe_load(text.split("---\n")[1])


def test_staged_front_matter_matches_the_app(tmp_path):
    import gradio

    from a3duck.hub_defaults import SPACE_ADAPTER, SPACE_BASE_MODEL
    from a3duck.publish.space_repo import SpaceSpec, stage_space

    staged, _ = stage_space(SpaceSpec("me/space"), str(tmp_path / "s"))
    meta = _front_matter(staged / "README.md")
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__
    assert (staged / meta["app_file"]).is_file()
    assert (staged / meta["app_file"]).read_bytes() == (ROOT / "app.py").read_bytes()
    assert meta["models"] == [SPACE_BASE_MODEL, SPACE_ADAPTER]
    assert len(meta["short_description"]) <= 60
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert f"gradio[mcp]=={gradio.__version__}" in requirements
    assert not (ROOT / "README.md").read_text(encoding="utf-8").startswith("---\n")
