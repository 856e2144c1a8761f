"""Bad data files get one clear message (or a bad row with its number), never a traceback;
--skip-bad-rows names what it drops; --data is recorded by its public name only."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import write_jsonl

from a3duck import data as D
from a3duck import dataset
from a3duck.config import TrainConfig
from a3duck.errors import DataError, ModelError

GOOD = {"instruction": "Say hi.", "output": "hi"}


@pytest.fixture(scope="module")
def tok(sp_tokenizer_dir):
    from a3duck.models import load_tokenizer

    return load_tokenizer(str(sp_tokenizer_dir))


def prepare(path, tokenizer, **kw):
    """(dataset, report) of ``path`` (dataset.prepare_dataset also returns the template)."""
    return dataset.prepare_dataset(TrainConfig(data=str(path), **kw), tokenizer)[:2]


def test_skip_bad_rows_names_the_rows_it_drops(tmp_path, tok, caplog):
    rows = [GOOD, {"instruction": "", "output": "x"}, {"instruction": "Add.", "output": "2"},
            {"instruction": "q", "output": ""}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with caplog.at_level(logging.WARNING, logger="a3duck.data"):
        _, report = prepare(path, tok, skip_bad_rows=True)
    text = caplog.text
    assert "skipped 2 invalid row(s) of 4" in text
    assert "row 2: instruction is missing or empty" in text
    assert "row 4: output/response is missing or empty" in text
    assert report.to_dict()["invalid_row_numbers"] == [2, 4]


def test_every_row_bad_says_so_not_the_cutoff(tmp_path, tok):
    path = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "", "output": "x"},
                                              {"instruction": "q", "output": ""}])
    with pytest.raises(DataError) as err:
        prepare(path, tok, skip_bad_rows=True)
    assert "every row is invalid (2 of 2)" in str(err.value)
    assert "cutoff" not in str(err.value)


def test_csv_row_with_more_fields_than_its_header_is_a_bad_row(tmp_path, tok):
    path = tmp_path / "d.csv"
    path.write_text("instruction,input,output\nSay hi.,,hi\nAdd.,1,2,extra,more\nOk.,,ok\n")
    with pytest.raises(DataError) as err:
        prepare(path, tok)
    assert "1 invalid row(s) of 3" in str(err.value)
    assert "row 2: has 5 fields, the header has 3" in str(err.value)
    ds, report = prepare(path, tok, skip_bad_rows=True)
    assert len(ds) == 2 and report.bad_rows == [(2, "has 5 fields, the header has 3")]


def test_corrupt_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([GOOD] * 50), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    with pytest.raises(DataError, match=r"d.parquet: not a readable Parquet file .*truncated"):
        D.load_rows(str(path))
    path.write_text("instruction,output\n")  # another format under a .parquet name
    with pytest.raises(DataError, match="not a readable Parquet file"):
        D.load_rows(str(path))


def test_deeply_nested_json(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "d.json"
    path.write_text(deep)
    with pytest.raises(DataError, match="d.json: JSON nested too deeply to read"):
        D.load_rows(str(path))
    lines = tmp_path / "d.jsonl"
    lines.write_text(json.dumps(GOOD) + "\n" + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "\n")
    rows = D.load_rows(str(lines))
    assert rows[0] == GOOD and rows[1] == D.BadRow("JSON nested too deeply to read", 2)


def test_base_model_folder_without_a_model(tmp_path):
    from a3duck.models import resolve_base_model

    with pytest.raises(ModelError, match=r"holds no model \(config.json and \*.safetensors"):
        resolve_base_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")  # not loaded: safetensors only
    with pytest.raises(ModelError, match=r"holds no model \(\*.safetensors weights missing"):
        resolve_base_model(str(tmp_path))


def test_data_recorded_by_public_name(tmp_path, tok):
    (tmp_path / "secret").mkdir()
    path = write_jsonl(tmp_path / "secret" / "train.jsonl", [GOOD])
    _, report = prepare(path, tok)
    assert report.to_dict()["source"] == "train.jsonl"
    assert str(tmp_path) not in json.dumps(report.to_dict())


MESSAGES = {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}


def test_paths_that_are_no_data_file_say_what_they_are(tmp_path, tok):
    """A folder, a symbolic-link loop, a dangling link: named for what they are (a folder was
    "not found", a loop went to the Hub as a dataset id), streamed or not."""
    folder = tmp_path / "runs"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [GOOD])
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    dangling = tmp_path / "d.jsonl"
    dangling.symlink_to(tmp_path / "gone.jsonl")
    cases = {folder: "is a folder: pass one data file (.json, .jsonl, .parquet, .csv) (it holds "
                     "a.jsonl)",
             loop: "is a symbolic link that loops back on itself: point it at a data file",
             dangling: f"is a symbolic link that points to {tmp_path / 'gone.jsonl'}, which does "
                       "not exist"}
    for path, message in cases.items():
        for streaming in (False, True):
            with pytest.raises(DataError, match="^" + str(path) + " ") as err:
                prepare(path, tok, streaming=streaming, max_steps=1 if streaming else -1)
            assert message in str(err.value)


@pytest.mark.parametrize("encoding,name", [("utf-16", "UTF-16"), ("utf-32", "UTF-32"),
                                           ("utf-16-le", None)])
def test_wide_encodings_are_named(tmp_path, tok, encoding, name):
    """UTF-16/32 text (every line a bad row, "unrecognised schema (columns: none)" before):
    named with the conversion to run; without a byte-order mark by its NUL bytes."""
    path = tmp_path / "wide.jsonl"
    path.write_text(json.dumps(GOOD) + "\n", encoding=encoding)
    with pytest.raises(DataError) as err:
        prepare(path, tok)
    text = str(err.value)
    assert (f"{name} encoded" if name else "not UTF-8 text (it holds NUL bytes)") in text
    assert "save it as UTF-8 (e.g. `iconv -f" in text
    utf8_bom = tmp_path / "bom.jsonl"  # a UTF-8 byte-order mark stays accepted
    utf8_bom.write_text(json.dumps(GOOD) + "\n", encoding="utf-8-sig")
    assert prepare(utf8_bom, tok)[1].kept == 1


def test_rows_of_two_schemas_in_one_file_are_refused(tmp_path, tok):
    """Alpaca rows among messages rows were all "messages must be a non-empty list"."""
    path = write_jsonl(tmp_path / "m.jsonl", [GOOD, MESSAGES, GOOD])
    for streaming in (False, True):
        with pytest.raises(DataError, match="rows of 2 schemas in one source: 2 instruction "
                                            r"\(first: row 1\); 1 messages \(first: row 2\)"):
            prepare(path, tok, streaming=streaming, max_steps=1 if streaming else -1)


def test_a_source_listed_twice_is_refused(tmp_path, tok):
    """The same file twice was silently doubled (duplicates are removed within a source)."""
    from a3duck.errors import ConfigError

    path = write_jsonl(tmp_path / "d.jsonl", [GOOD])
    same = [str(path), {"path": str(tmp_path / "." / "d.jsonl"), "epochs": 1}]
    with pytest.raises(ConfigError, match=r"sources 1 and 2 are the same .*: list it once, "
                                          "with `epochs: 2`"):
        TrainConfig(data=same)
    split_differs = [str(path), {"path": str(path), "split": "test"}]
    TrainConfig(data=split_differs)  # another split is another source


def test_advice_names_only_settings_not_in_effect(tmp_path, tok):
    """Every row over the cutoff: under too_long: truncate (the default) the advice no longer
    says "use too_long: truncate"."""
    long_prompt = {"instruction": " ".join(["word"] * 300), "output": "ok"}
    path = write_jsonl(tmp_path / "long.jsonl", [long_prompt])
    with pytest.raises(DataError) as err:
        prepare(path, tok, cutoff_len=32)
    assert "their prompts leave no room for an answer" in str(err.value)
    assert "truncate" not in str(err.value)
    with pytest.raises(DataError, match="pass --too-long truncate"):
        prepare(path, tok, cutoff_len=32, too_long="drop")
