"""The Hub's `.eval_results/*.yaml` (written by `a3duck card`) is on the upload allow-list the
way plots/ is: one level, that suffix, regular files only."""

from __future__ import annotations

from a3duck.publish import hub


def test_eval_results_yaml_is_staged_one_level_only(tmp_path):
    folder = tmp_path / "adapter"
    (folder / ".eval_results" / "deeper").mkdir(parents=True)
    (folder / ".eval_results" / "a3duck.yaml").write_text("- dataset: {id: x}\n")
    (folder / ".eval_results" / "notes.json").write_text("{}")
    (folder / ".eval_results" / "deeper" / "x.yaml").write_text("[]\n")
    (folder / ".eval_results" / "link.yaml").symlink_to(folder / ".eval_results" / "a3duck.yaml")
    found = dict(hub._uploadable(folder))
    assert found[".eval_results/a3duck.yaml"] is None
    assert "symbolic link" in found[".eval_results/link.yaml"]
    assert ".eval_results/notes.json" not in found
    assert ".eval_results/deeper/x.yaml" not in found
