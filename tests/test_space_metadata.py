"""The Space's front matter agrees with the code: pinned Gradio version, entry point, models."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), f"{path} must start with the Space's YAML front matter"
    return yaml.safe_load(text.split("---\n")[1])


def test_front_matter_matches_the_app():
    import gradio

    from a3duck.space.runtime import SPACE_ADAPTER, SPACE_BASE_MODEL

    meta = _front_matter(ROOT / "README.md")
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__
    assert (ROOT / meta["app_file"]).is_file()
    assert meta["models"] == [SPACE_BASE_MODEL, SPACE_ADAPTER]
    assert len(meta["short_description"]) <= 60
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert f"gradio=={gradio.__version__}" in requirements
