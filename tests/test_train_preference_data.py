"""Preference pairs (a3duck.preference): schemas, bad rows by row number, cutoff, method fit."""

import json

import pytest
from conftest import repeat_rows, require, write_jsonl

from a3duck import models, preference
from a3duck.config import TrainConfig
from a3duck.data import DataError

HH = "preference/hh-rlhf-harmless-base-test-part1.jsonl"


def config(data, tiny_llama_dir, **kw):
    base = {"base_model": str(tiny_llama_dir), "data": str(data), "method": "dpo", "cutoff_len": 128,
                "device": "cpu", "prompt_template": "alpaca", "add_eos_token": True}
    base.update(kw)
    return TrainConfig(**base)


def prepare(rows, tmp_path, tiny_llama_dir, **kw):
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    tok = models.load_tokenizer(str(tiny_llama_dir))
    return preference.prepare(config(data, tiny_llama_dir, **kw), tok), tok


def test_three_schemas_give_the_same_tokens(tmp_path, tiny_llama_dir):
    conv = [{"role": "user", "content": "What is the capital of France?"}]
    rows = {
        "conversation_prompt": {"prompt": conv, "chosen": [{"role": "assistant", "content": "Paris."}],
                                "rejected": [{"role": "assistant", "content": "Lyon."}]},
        "conversation_whole": {"chosen": [*conv, {"role": "assistant", "content": "Paris."}],
                               "rejected": [*conv, {"role": "assistant", "content": "Lyon."}]},
        "transcript": {"chosen": "\n\nHuman: What is the capital of France?\n\nAssistant: Paris.",
                       "rejected": "\n\nHuman: What is the capital of France?\n\nAssistant: Lyon."},
    }
    got = {}
    for name, row in rows.items():
        (ds, report, template), tok = prepare([row], tmp_path, tiny_llama_dir)
        assert report.kept == 1 and template == "alpaca"
        got[name] = ds[0]
    assert got["conversation_prompt"] == got["conversation_whole"] == got["transcript"]
    pair = got["transcript"]
    assert tok.decode(pair["chosen_ids"]).startswith("Paris.")
    assert pair["chosen_ids"][-1] == tok.eos_token_id  # add_eos_token for alpaca answers
    assert "### Response:" in tok.decode(pair["prompt_ids"])


def test_text_pairs_are_verbatim(tmp_path, tiny_llama_dir):
    (ds, _, _), tok = prepare([{"prompt": "Q: 2+2?\nA: ", "chosen": "4", "rejected": "5"}],
                              tmp_path, tiny_llama_dir, add_eos_token=False)
    assert tok.decode(ds[0]["prompt_ids"], skip_special_tokens=True) == "Q: 2+2?\nA: "
    assert tok.decode(ds[0]["chosen_ids"]).strip() == "4"


def test_transcript_split_into_conversation_and_answers():
    conv, answer = preference.split_transcript(
        "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant: fine, thanks")
    assert [m["role"] for m in conv] == ["user", "assistant", "user"]
    assert conv[2]["content"] == "how are you?" and answer == "fine, thanks"


BAD = [
    ({"prompt": "p", "chosen": "same", "rejected": "same"}, "chosen and rejected are identical"),
    ({"prompt": "p", "chosen": "", "rejected": "x"}, "chosen is missing or empty"),
    ({"prompt": "p", "chosen": "x", "rejected": "  "}, "rejected is missing or empty"),
    ({"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: other\n\nAssistant: c"},
     "the chosen and rejected transcripts do not share a prefix"),
    ({"chosen": "\n\nHuman: a\n\nAssistant: ", "rejected": "\n\nHuman: a\n\nAssistant: c"},
     "chosen: the final Assistant answer is missing or empty"),
    ({"chosen": "just text", "rejected": "\n\nHuman: a\n\nAssistant: c"},
     "chosen: not a \\n\\nHuman"),
    ({"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
      "rejected": [{"role": "user", "content": "z"}, {"role": "assistant", "content": "c"}]},
     "chosen and rejected differ before their last assistant turn"),
]


@pytest.mark.parametrize(("row", "message"), BAD)
def test_each_bad_row_class_is_named_with_its_row(row, message, tmp_path, tiny_llama_dir):
    good = {"prompt": "p", "chosen": "yes", "rejected": "no"}
    if "prompt" not in row:
        good = {"chosen": "\n\nHuman: a\n\nAssistant: yes", "rejected": "\n\nHuman: a\n\nAssistant: no"}
        if isinstance(row["chosen"], list):
            good = {"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "y"}],
                    "rejected": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "n"}]}
    with pytest.raises(DataError, match="--skip-bad-rows") as err:
        prepare([good, good | {"prompt": "q"} if "prompt" in good else good, row], tmp_path,
                tiny_llama_dir)
    assert f"row 3: {message}" in str(err.value)
    (_ds, report, _), _ = prepare([good, row], tmp_path, tiny_llama_dir, skip_bad_rows=True)
    assert report.kept == 1 and report.to_dict()["invalid_row_numbers"] == [2]


def test_pair_over_the_cutoff_is_truncated_or_dropped_and_counted(tmp_path, tiny_llama_dir):
    long = " ".join(["fox"] * 200)
    rows = [{"prompt": "p", "chosen": "yes", "rejected": "no"},
            {"prompt": "q", "chosen": long, "rejected": "short answer"}]
    (ds, report, _), _ = prepare(rows, tmp_path, tiny_llama_dir, cutoff_len=64)
    assert (report.too_long, report.truncated, report.kept) == (1, 1, 2)
    assert all(len(p) + max(len(c), len(r)) <= 64 for p, c, r in
               zip(ds["prompt_ids"], ds["chosen_ids"], ds["rejected_ids"]))
    (ds, report, _), _ = prepare(rows, tmp_path, tiny_llama_dir, cutoff_len=64, too_long="drop")
    assert (report.too_long, report.dropped_too_long, report.kept) == (1, 1, 1)
    assert "1 over the cutoff" in report.summary()


def test_prompt_and_completion_limits(tmp_path, tiny_llama_dir):
    rows = [{"prompt": " ".join(["dog"] * 50), "chosen": " ".join(["fox"] * 40), "rejected": "no"}]
    (ds, report, _), _ = prepare(rows, tmp_path, tiny_llama_dir, max_prompt_len=10,
                                 max_completion_len=5)
    assert len(ds[0]["prompt_ids"]) == 10 and len(ds[0]["chosen_ids"]) == 5
    assert report.truncated == 1


def test_preference_file_refused_by_sft_before_any_model_loads(tmp_path, tiny_llama_dir,
                                                               monkeypatch):
    from a3duck.train import train

    data = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(models, "load_base", no_model)
    cfg = config(data, tiny_llama_dir, method="sft", output_dir=str(tmp_path / "o"))
    with pytest.raises(DataError, match="fit --method dpo, not sft"):
        train(cfg)
    sft = write_jsonl(tmp_path / "sft.jsonl", repeat_rows(2))
    with pytest.raises(DataError, match=r"SFT rows \(instruction\) and fit --method sft, not dpo"):
        train(cfg.replace(data=str(sft), method="dpo"))


@pytest.mark.slow
def test_cli_refuses_mismatch_with_exit_2(tmp_path, tiny_llama_dir):
    import os
    import subprocess
    import sys

    sft = write_jsonl(tmp_path / "sft.jsonl", repeat_rows(2))
    run = subprocess.run([sys.executable, "-m", "a3duck", "train", "--method", "dpo", "--data",
                          str(sft), "--base-model", str(tiny_llama_dir), "--cutoff-len", "256", "--output-dir",
                          str(tmp_path / "o")], check=False, capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 2 and "fit --method sft, not dpo" in run.stderr
    assert "Traceback" not in run.stderr


def test_real_hh_rlhf_pairs(shared_data, tmp_path, tiny_llama_dir):
    path = shared_data / HH
    require(path.is_file(), f"{HH} missing under ../shared/data")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert preference.detect(rows, "hh") == preference.TRANSCRIPT
    tok = models.load_tokenizer(str(tiny_llama_dir))
    cfg = config(path, tiny_llama_dir, skip_bad_rows=True, cutoff_len=4096)
    _ds, report, _ = preference.prepare(cfg, tok)
    # 5 of the first 1,000 are unusable: 3 empty final answers, 2 with two Assistant turns in a row.
    assert [row for row, _ in report.bad_rows] == sorted(row for row, _ in report.bad_rows)
    assert len(report.bad_rows) == 5 and report.kept == 1000 - 5 - report.duplicates
    first = preference.to_pair(rows[0], 1, preference.TRANSCRIPT)
    assert first.messages[0]["content"] == "what are some pranks with a pen i can do?"
    assert first.chosen.startswith("No, sorry!")
