"""One data path: the same file gives the same rows, the same row-numbered errors and the same
report whether it is read into memory or streamed (a3duck.data.read_rows is the one reader)."""

from __future__ import annotations

import json

import pytest

from a3duck import data, streaming
from a3duck.data import DataError, DataReport
from a3duck.sources import Source


def _streamed(path, skip_bad_rows=True):
    stream = streaming.SourceStream(Source(path=str(path)))
    report = DataReport(str(path))
    rows = list(streaming.examples([stream], "alpaca", skip_bad_rows, 0, report))
    return rows, stream.report


def _in_memory(path, skip_bad_rows=True):
    report = DataReport(str(path))
    numbered = data.load_numbered(str(path))
    rows = [row for _, row in numbered]
    examples = data.normalise(rows, str(path), "alpaca", skip_bad_rows, report,
                              numbers=[n for n, _ in numbered])
    return examples, report


def _csv_with_an_extra_field(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("instruction,input,output\nsay a,,a\nsay b,,b,EXTRA\nsay c,,c\n",
                    encoding="utf-8")
    return path


def _jsonl_with_gaps(tmp_path):
    """Blank lines, a BOM, a line that is not JSON, one nested too deeply, a row missing its
    instruction: line numbers must survive all of them."""
    rows = ['{"instruction": "say a", "output": "a"}', "", '{"instruction": "say b", "output"',
            "[" * 100_000 + "]" * 100_000, '{"instruction": "", "output": "x"}', "",
            '{"instruction": "say c", "output": "c"}']
    path = tmp_path / "d.jsonl"
    path.write_text("\ufeff" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("make", [_csv_with_an_extra_field, _jsonl_with_gaps])
def test_streamed_and_in_memory_give_the_same_rows_and_report(make, tmp_path):
    path = make(tmp_path)
    reader = [(n, row if isinstance(row, dict) else repr(row))
              for n, row in data.read_rows(str(path), streaming=True)]
    assert reader == [(n, row if isinstance(row, dict) else repr(row))
                      for n, row in data.read_rows(str(path))]
    kept, streamed = _streamed(path)
    examples, loaded = _in_memory(path)
    assert [(e.row, e.prompt, e.completion) for e in kept] == \
        [(e.row, e.prompt, e.completion) for e in examples]
    assert streamed.bad_rows == loaded.bad_rows and streamed.bad_rows
    assert streamed.total_rows == loaded.total_rows
    assert streamed.to_dict()["invalid_row_numbers"] == loaded.to_dict()["invalid_row_numbers"]


def test_csv_extra_field_is_a_bad_row_in_both_modes(tmp_path):
    """It used to be accepted silently when streamed."""
    path = _csv_with_an_extra_field(tmp_path)
    for read in (_streamed, _in_memory):
        with pytest.raises(DataError) as err:
            read(path, skip_bad_rows=False)
        assert "  row 2: has 4 fields, the header has 3\n" in str(err.value)
        assert "Fix them, or pass --skip-bad-rows to drop them." in str(err.value)


def test_jsonl_errors_carry_line_numbers_in_both_modes(tmp_path):
    path = _jsonl_with_gaps(tmp_path)
    for read in (_streamed, _in_memory):
        _, report = read(path)
        assert report.bad_rows == [(3, "not valid JSON (Expecting ':' delimiter)"),
                                   (4, "JSON nested too deeply to read"),
                                   (5, "instruction is missing or empty")]
    kept, _ = _streamed(path)
    assert [e.row for e in kept] == [1, 7]


def test_a_json_array_is_read_in_memory_and_refused_when_streamed(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"instruction": "say a", "output": "a"}]), encoding="utf-8")
    assert data.load_rows(str(path)) == [{"instruction": "say a", "output": "a"}]
    with pytest.raises(DataError, match="a JSON array cannot be streamed; use JSON Lines"):
        list(data.read_rows(str(path), streaming=True))
