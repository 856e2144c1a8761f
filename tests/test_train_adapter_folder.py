"""The adapter folder is one module: its file names are typed nowhere else (tests aside), and
every reader's message for a damaged file is the same."""

from __future__ import annotations

from pathlib import Path

from a3duck import adapter_folder as af

ROOT = Path(__file__).resolve().parents[1]
NAMES = (af.ADAPTER_CONFIG, af.ADAPTER_WEIGHTS, af.TRAIN_CONFIG, af.TRAIN_METRICS,
         af.DATA_REPORT, af.EVAL_RESULTS, af.HEATMAP, af.HUB_EVAL_ENTRIES, af.RECORDED_BASE,
         *af.TOKENIZER_FILES)
CODE = [p for pattern in ("a3duck/**/*.py", "bench/*.py", "notebooks/*.py", "*.py")
        for p in sorted(ROOT.glob(pattern)) if p != ROOT / "a3duck" / "adapter_folder.py"]


def test_no_adapter_folder_file_name_outside_its_module():
    found = [f"{p.relative_to(ROOT)}: {name}" for p in CODE
             for name in NAMES if name in p.read_text(encoding="utf-8")]
    assert len(CODE) > 80 and found == []


def test_hub_eval_folder_is_huggingface_hubs():
    from huggingface_hub.constants import EVAL_RESULTS_FOLDER

    assert af.HUB_EVAL_DIR == EVAL_RESULTS_FOLDER


def test_readers_of_a_folder_without_records(tmp_path):
    (tmp_path / af.ADAPTER_CONFIG).write_text('{"peft_type": "IA3"}')
    assert af.require(tmp_path) == tmp_path
    assert af.recorded_base(tmp_path) is None and af.train_record(tmp_path) is None
    assert af.train_metrics(tmp_path) is None and af.data_report(tmp_path) is None
    assert af.tokenizer_files(tmp_path) == [] and af.shipped_heatmap(tmp_path) is None
    assert af.eval_results_candidates(tmp_path) == [tmp_path / af.EVAL_RESULTS,
                                                    tmp_path.parent / af.EVAL_RESULTS]
