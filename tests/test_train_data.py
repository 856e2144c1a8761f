"""Data loading, schema normalisation, validation reports and tokenisation."""

import json

import pytest

from a3duck import data as D
from a3duck import dataset as DS
from a3duck.config import TrainConfig


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def prepare(path, tokenizer, **kw):
    ds, report, _ = DS.prepare_dataset(TrainConfig(data=str(path), **kw), tokenizer)
    return ds, report


@pytest.fixture(scope="module")
def tok(sp_tokenizer_dir):
    from a3duck.models import load_tokenizer

    return load_tokenizer(str(sp_tokenizer_dir))


@pytest.mark.parametrize("row,prompt_has", [
    ({"instruction": "Add.", "input": "2 + 2", "output": "4", "data_source": "x"}, "### Input:\n2 + 2"),
    ({"instruction": "Add 2 and 2.", "input": "", "output": "4"}, "### Instruction:\nAdd 2 and 2."),
    ({"instruction": "Add.", "input": "2 + 2", "response": "4"}, "### Input:"),  # GPTeacher
    ({"prompt": "Q: 2+2?\nA:", "completion": " 4"}, "Q: 2+2?\nA:"),
])
def test_schemas_normalise(tmp_path, row, prompt_has):
    rows = D.load_rows(str(write_jsonl(tmp_path / "d.jsonl", [row])))
    ex = D.normalise(rows, "d", "alpaca", False, D.DataReport("d"))[0]
    assert prompt_has in ex.prompt and ex.completion.strip() == "4"


def test_csv_parquet_and_json_array(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"instruction": "Say hi.", "input": "", "output": "hi"}]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "a.csv").write_text("instruction,input,output\nSay hi.,,hi\n")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    for name in ("a.json", "a.csv", "a.parquet"):
        got = D.load_rows(str(tmp_path / name))
        assert got[0]["instruction"] == "Say hi." and got[0]["output"] == "hi"


def test_bad_rows_reported_with_numbers_then_skipped(tmp_path, tok):
    rows = [{"instruction": "ok", "output": "yes"}, {"instruction": "", "output": "x"},
            {"instruction": "q", "output": ""}, {"instruction": 5, "output": "x"},
            {"instruction": "ok", "output": "yes"}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(D.DataError) as err:
        prepare(path, tok)
    msg = str(err.value)
    assert "3 invalid row(s) of 5" in msg and "row 2: instruction is missing or empty" in msg
    assert "row 3: output/response is missing or empty" in msg and "row 4: instruction must be text" in msg
    assert "--skip-bad-rows" in msg
    ds, report = prepare(path, tok, skip_bad_rows=True)
    assert (len(ds), len(report.bad_rows), report.duplicates) == (1, 3, 1)


def test_non_utf8_bytes_are_a_row_error(tmp_path, tok):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"instruction": "ok", "output": "fine"}\n{"instruction": "caf\xe9", "output": "x"}\n')
    with pytest.raises(D.DataError, match="row 2: instruction contains bytes that are not valid UTF-8"):
        prepare(path, tok)


def test_wrong_schema_and_missing_file(tmp_path, tok):
    with pytest.raises(D.DataError, match=r"unrecognised schema \(columns: answer, question\)"):
        prepare(write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "a"}]), tok)
    with pytest.raises(D.DataError, match="data file not found: .*nope.jsonl"):
        prepare(tmp_path / "nope.jsonl", tok)


def test_too_long_rows_truncate_or_drop(tmp_path, tok):
    long = {"instruction": "Say it.", "output": "the quick brown fox " * 30}
    path = write_jsonl(tmp_path / "d.jsonl", [long, {"instruction": "Hi.", "output": "hi"}])
    ds, rep = prepare(path, tok, cutoff_len=64)
    assert (rep.too_long, rep.truncated, len(ds)) == (1, 1, 2) and len(ds[0]["input_ids"]) == 64
    ds, rep = prepare(path, tok, cutoff_len=64, too_long="drop")
    assert (rep.dropped_too_long, len(ds)) == (1, 1)
    only_long = write_jsonl(tmp_path / "l.jsonl", [long])
    with pytest.raises(D.DataError, match="no trainable rows left: 1 of 1 rows are longer than cutoff_len=64"):
        prepare(only_long, tok, cutoff_len=64, too_long="drop")


def test_completion_mask_and_eos(tok):
    ex = D.Example(prompt="### Instruction:\nHi\n\n### Response:\n", completion="hello", row=1)
    ids, mask = DS.tokenize_example(ex, tok, add_eos=True)
    prompt_ids = tok(ex.prompt)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[: len(prompt_ids)] == prompt_ids
    assert ids[-1] == tok.eos_token_id and mask == [0] * len(prompt_ids) + [1] * (len(ids) - len(prompt_ids))
    ids2, _ = DS.tokenize_example(ex, tok, add_eos=False)
    assert ids2 == ids[:-1]
