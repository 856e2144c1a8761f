"""`a3duck check-contamination` against the real benchmark files in ../shared/data."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from a3duck.cli import main
from a3duck.evaluation import contamination as C

UNRELATED = [
    {"instruction": "Write a Python function that reverses a list.", "input": "",
     "output": "def rev(x):\n    return x[::-1]"},
    {"instruction": "Which of the following is true about Python lists?",
     "input": "A) immutable B) ordered", "output": "B"},
    {"instruction": "Translate to French.", "input": "The cat sleeps.", "output": "Le chat dort."},
    {"instruction": "Summarise the paragraph.", "input": "Rain fell all day in the valley.",
     "output": "It rained."},
    {"instruction": "Name a prime number larger than ten.", "input": "", "output": "11"},
]


def _first_jsonl(path):
    return json.loads(path.read_text(encoding="utf-8").splitlines()[0])


def _long_mmlu_row(shared):
    for f in sorted((shared / "mmlu" / "val").glob("*.csv")):
        for row in csv.reader(f.open(encoding="utf-8", newline="")):
            if len(row[0].split()) >= 25 and "\n" not in row[0]:
                return row
    raise AssertionError("no long MMLU question found")


@pytest.fixture
def training_file(shared_data, tmp_path):
    """Unrelated rows plus: an ARC question copied with its options, a TruthfulQA question
    copied exactly, a HellaSwag context wrapped in an instruction, and an MMLU question
    paraphrased with small edits (one word swapped, case and punctuation changed)."""
    arc = _first_jsonl(shared_data / "arc" / "ARC-Challenge-Dev.jsonl")["question"]
    options = " ".join(f"{c['label']}) {c['text']}" for c in arc["choices"])
    tqa = json.loads((shared_data / "truthfulqa" / "mc_task_v1_part1.json").read_text())[0]
    hs = _first_jsonl(shared_data / "hellaswag" / "hellaswag_val_part1.jsonl")
    mmlu = _long_mmlu_row(shared_data)
    words = mmlu[0].split()
    words[len(words) // 2] = "banana"
    paraphrase = " ".join(words).upper().replace(",", ";") + " " + " / ".join(mmlu[1:5])
    rows = UNRELATED[:3] + [
        {"instruction": f"Answer this science question. {arc['stem']}", "input": options,
         "output": "D"},
        {"instruction": tqa["question"], "input": "", "output": "Nothing happens."},
        {"instruction": "Finish the story.", "input": hs["ctx"], "output": hs["endings"][0]},
        {"instruction": paraphrase, "input": "", "output": mmlu[5]},
    ] + UNRELATED[3:]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    return path


def test_finds_copies_and_paraphrase_per_benchmark(training_file, shared_data):
    report, _, _, flagged = C.check(str(training_file), shared_data)
    b = report["benchmarks"]
    assert (b["arc_challenge"]["exact_duplicates"], b["arc_challenge"]["near_duplicates"]) == (1, 0)
    assert (b["truthfulqa_mc2"]["exact_duplicates"], b["truthfulqa_mc2"]["near_duplicates"]) == (1, 0)
    assert (b["hellaswag"]["exact_duplicates"], b["hellaswag"]["near_duplicates"]) == (1, 0)
    assert (b["mmlu"]["exact_duplicates"], b["mmlu"]["near_duplicates"]) == (0, 1)
    near = b["mmlu"]["examples"][0]
    assert near["kind"] == "near" and C.DEFAULT_THRESHOLD <= near["similarity"] < 1
    assert near["training_row"] == 7 and "BANANA" not in near["benchmark_text"]
    assert b["arc_challenge"]["examples"][0]["training_row"] == 4
    assert sorted(i + 1 for i in flagged) == [4, 5, 6, 7]
    assert report["training_rows"] == 10 and report["invalid_training_rows"] == 1
    assert report["clean_training_rows"] == 5
    assert b["mmlu"]["questions"] == 1531 and b["arc_challenge"]["questions"] == 299
    assert report["threshold"] == C.DEFAULT_THRESHOLD and "5-gram" in report["method"]


def test_threshold_controls_near_duplicates(training_file, shared_data):
    strict, *_ = C.check(str(training_file), shared_data, threshold=0.99)
    assert strict["benchmarks"]["mmlu"]["near_duplicates"] == 0
    assert strict["benchmarks"]["arc_challenge"]["exact_duplicates"] == 1  # exact ignores the threshold


def test_cli_writes_report_and_filtered_data(training_file, shared_data, tmp_path, capsys):
    report_path, filtered = tmp_path / "out" / "report.json", tmp_path / "clean.jsonl"
    code = main(["check-contamination", "--data", str(training_file), "--data-dir",
                 str(shared_data), "--output", str(report_path), "--write-filtered",
                 str(filtered)])
    assert code == 0
    out = capsys.readouterr().out
    assert "truthfulqa" in out and "4 of 10 training rows flagged" in out
    text = report_path.read_text()
    assert str(tmp_path) not in text and str(shared_data) not in text  # no local paths
    assert json.loads(text)["data"] == "train.jsonl"
    kept = [json.loads(line) for line in filtered.read_text().splitlines()]
    assert kept == UNRELATED


def test_missing_benchmarks_are_reported_not_faked(training_file, shared_data, tmp_path):
    only_arc = tmp_path / "bench"
    shutil.copytree(shared_data / "arc", only_arc / "arc")
    report, *_ = C.check(str(training_file), only_arc)
    assert report["benchmarks"]["arc_challenge"]["exact_duplicates"] == 1
    for name in ("mmlu", "hellaswag", "truthfulqa_mc2"):
        assert report["benchmarks"][name] == {"status": "missing", "files": [], "questions": 0}


def test_bad_inputs_are_clear_errors(training_file, tmp_path, capsys):
    with pytest.raises(C.ContaminationError, match="not found"):
        C.check(str(training_file), tmp_path / "nope")
    with pytest.raises(C.ContaminationError, match="no benchmark files"):
        C.check(str(training_file), tmp_path)
    with pytest.raises(C.ContaminationError, match="threshold"):
        C.check(str(training_file), tmp_path, threshold=1.5)
    code = main(["check-contamination", "--data", str(tmp_path / "missing.jsonl"),
                 "--data-dir", str(tmp_path)])
    assert code == 2 and "error:" in capsys.readouterr().err


def test_normalisation_and_shingles():
    assert C.normalise_text("  Hello,\tWORLD!! ÿ_x ") == "hello world ÿ x"
    assert C.shingles("abcdef") == {"abcde", "bcdef"}


@pytest.mark.parametrize("schema", ["messages", "conversations"])
def test_conversation_rows_are_checked_like_instruction_rows(training_file, shared_data, tmp_path,
                                                             schema):
    """check-contamination reads the parsed rows of every schema data.py accepts (it used to
    read raw keys: KeyError 'instruction' on `messages` rows)."""
    role, text, user, bot = (("role", "content", "user", "assistant") if schema == "messages"
                             else ("from", "value", "human", "gpt"))
    lines = training_file.read_text(encoding="utf-8").splitlines()
    converted = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            converted.append(line)  # the invalid row stays invalid
            continue
        asked = f"{row['instruction']} {row['input']}".strip()
        converted.append(json.dumps({schema: [{role: user, text: asked},
                                              {role: bot, text: row["output"]}]}))
    chats = tmp_path / f"{schema}.jsonl"
    chats.write_text("\n".join(converted) + "\n", encoding="utf-8")
    as_chats, *_ = C.check(str(chats), shared_data)
    as_rows, *_ = C.check(str(training_file), shared_data)
    counts = {name: (b["exact_duplicates"], b["near_duplicates"])
              for name, b in as_chats["benchmarks"].items()}
    assert counts == {name: (b["exact_duplicates"], b["near_duplicates"])
                      for name, b in as_rows["benchmarks"].items()}
    assert counts["arc_challenge"] == (1, 0) and counts["mmlu"] == (0, 1)
    assert as_chats["invalid_training_rows"] == 1 and as_chats["training_rows"] == 10
