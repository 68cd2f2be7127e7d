"""Import parsing and validation without a server: formats, row numbers, messages, COPY escaping."""

from __future__ import annotations

import io
import re

import pytest

from api_server.common.errors import BadRequest
from api_server.imports import parsers
from api_server.imports.bulk import copy_escape, copy_text
from api_server.imports.validation import RowError, TaskValidator
from api_server.imports.writer import IdRanges


def test_json_items_accepts_list_or_object_and_names_position():
    assert parsers.json_items(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]
    assert parsers.json_items(b'{"a": 1}') == [{"a": 1}]
    with pytest.raises(BadRequest) as err:
        parsers.json_items(b'[{"a": 1},\n {"a": }]')
    assert "line 2" in err.value.detail and "malformed JSON" in err.value.detail
    with pytest.raises(BadRequest, match="expected a JSON list"):
        parsers.json_items(b"42")
    with pytest.raises(BadRequest, match="empty"):
        parsers.json_items(b"  ")


def test_jsonl_rows_are_line_numbers():
    lines = [b'{"a": 1}', b"", b'{"a": 3}']
    assert list(parsers.jsonl_items(lines, 1, "")) == [(1, {"a": 1}), (3, {"a": 3})]
    with pytest.raises(BadRequest) as err:
        list(parsers.jsonl_items([b'{"a": 1}', b"{oops"], 10, "f.jsonl: "))
    assert list(err.value.validation_errors) == ["f.jsonl: row 11"]


def test_csv_and_tsv():
    rows = list(parsers.csv_items(io.StringIO('text,n\n"a, b",1\n\nc,2\n'), ",", ""))
    assert rows == [(1, {"text": "a, b", "n": "1"}), (2, {"text": "c", "n": "2"})]
    assert list(parsers.csv_items(io.StringIO("x\ty\n1\t2\n"), "\t", "")) == [(1, {"x": "1", "y": "2"})]
    with pytest.raises(BadRequest, match="has 1 values, but the header has 2 columns"):
        list(parsers.csv_items(io.StringIO("a,b\n1\n"), ",", ""))
    with pytest.raises(BadRequest, match="duplicate column"):
        list(parsers.csv_items(io.StringIO("a,a\n1,2\n"), ",", ""))
    with pytest.raises(BadRequest, match="no header"):
        list(parsers.csv_items(io.StringIO(""), ",", ""))


def test_txt_and_formats():
    assert list(parsers.txt_items(io.StringIO("one\n\n two \n"), "text", "")) == [
        (1, {"text": "one"}),
        (3, {"text": " two "}),
    ]
    assert parsers.format_of_filename("Tasks.JSONL") is parsers.Format.jsonl
    assert parsers.format_of_filename("image.png") is None


def test_validator_shapes_and_messages():
    v = TaskValidator({"text"})
    bare = v.task({"text": "hi", "extra": 1})
    assert bare.data == {"text": "hi", "extra": 1} and bare.annotations is None and bare.meta_json == "{}"
    full = v.task(
        {
            "data": {"text": "hi"},
            "meta": {"k": 1},
            "id": 5,
            "annotations": [{"result": [{"from_name": "x"}], "lead_time": 2, "completed_by": {"id": 3}}],
            "predictions": [{"result": [], "score": 0.5, "model_version": 7}],
        }
    )
    assert full.meta_json == '{"k":1}'
    assert full.annotations[0].lead_time == 2.0 and full.annotations[0].completed_by == 3
    assert full.predictions[0].model_version == "7" and full.predictions[0].score == 0.5
    # legacy "completions" are annotations
    assert v.task({"data": {"text": "x"}, "completions": [{"result": []}]}).annotations
    cases = [
        ("text", "must be a JSON object"),
        ({"other": 1}, "lacks $text"),
        ({"data": {"text": "x"}, "bogus": 1}, "unknown task field(s): bogus"),
        ({"data": {"text": "x"}, "meta": []}, "meta must be a JSON object"),
        ({"data": {"text": "x"}, "annotations": [{"result": {}}]}, "annotations[0].result must be a list"),
        ({"data": {"text": "x"}, "annotations": [{"result": [1]}]}, "result items must be objects"),
        ({"data": {"text": "x"}, "predictions": [{"result": [], "score": True}]}, "score must be a number"),
    ]
    for item, message in cases:
        with pytest.raises(RowError, match=re.escape(message)):
            v.task(item)


def test_copy_text_escaping():
    assert copy_escape(b'{"a":"x\\\\ny"}') == b'{"a":"x\\\\\\\\ny"}'
    assert copy_escape(b"a\tb\nc") == b"a\\tb\\nc"
    assert copy_text(None) == b"\\N" and copy_text(True) == b"t" and copy_text(1.5) == b"1.5"


def test_id_ranges():
    ranges = IdRanges()
    ranges.add([1, 2, 3])
    ranges.add([4, 7, 8])
    assert ranges.runs == [[1, 4], [7, 8]] and ranges.count == 6
    assert ranges.ids() == [1, 2, 3, 4, 7, 8]
