"""Export pieces without a server: format availability, result flattening, CSV columns, CONLL tags."""

from __future__ import annotations

from types import SimpleNamespace

import orjson

from api_server.exports.encoders import conll_tags, csv_columns
from api_server.exports.formats import ExportType, available, listing
from api_server.exports.rawsql import TaskRow
from api_server.exports.results import items, prettify
from api_server.labelconfig.parser import parse

TEXT = "<View><Text name='text' value='$text'/><Choices name='c' toName='text'><Choice value='A'/></Choices></View>"
NER = "<View><Text name='text' value='$text'/><Labels name='l' toName='text'><Label value='PER'/></Labels></View>"
IMAGE = (
    "<View><Image name='img' value='$image'/>"
    "<RectangleLabels name='box' toName='img'><Label value='Cat'/></RectangleLabels></View>"
)
POLY = (
    "<View><Image name='img' value='$image'/>"
    "<PolygonLabels name='poly' toName='img'><Label value='Cat'/></PolygonLabels></View>"
)
TWO_FIELDS = (
    "<View><Text name='a' value='$a'/><Text name='b' value='$b'/>"
    "<Labels name='l' toName='a'><Label value='X'/></Labels></View>"
)


def test_available_formats_follow_the_config():
    base = {ExportType.JSON, ExportType.JSON_MIN, ExportType.JSONL, ExportType.CSV, ExportType.TSV}
    assert available(parse(TEXT)) == base
    assert available(parse(NER)) == base | {ExportType.CONLL2003}
    assert available(parse(IMAGE)) == base | {ExportType.COCO, ExportType.YOLO}
    assert available(parse(POLY)) == base | {ExportType.COCO}
    assert available(parse(TWO_FIELDS)) == base  # more than one data field: tabular formats only
    assert available(None) == base
    disabled = {f["name"]: f["disabled"] for f in listing(parse(IMAGE))}
    assert disabled["COCO"] is False and disabled["CONLL2003"] is True


def _ann(id_, result, created, cancelled=False):
    return SimpleNamespace(
        id=id_,
        result=orjson.dumps(result).decode(),
        was_cancelled=cancelled,
        created_at=created,
        updated_at=created,
        completed_by_id=1,
        lead_time=None,
    )


def test_items_skip_cancelled_and_go_newest_first():
    task = TaskRow(9, '{"text": "t"}')
    choice = {"from_name": "c", "to_name": "text", "type": "choices", "value": {"choices": ["A"]}}
    unknown = {"from_name": "zzz", "value": {"x": 1}}
    anns = [
        _ann(1, [choice], "2026-01-01T00:00:00Z"),
        _ann(2, [choice, unknown], "2026-01-02T00:00:00Z"),
        _ann(3, [], "2026-01-03T00:00:00Z", cancelled=True),
    ]
    got = list(items(task, anns, parse(TEXT)))
    assert [i.annotation_id for i in got] == [2, 1]
    assert got[0].outputs == {"c": [{"choices": ["A"], "type": "Choices"}]}
    assert prettify(got[0].outputs["c"]) == "A"
    bare = list(items(task, [], parse(TEXT)))
    assert len(bare) == 1 and bare[0].annotation_id is None and bare[0].data == {"text": "t"}


def test_prettify():
    # Label Studio's converter: one Choices region stays one value, a list only when several
    assert prettify([{"type": "Choices", "choices": ["A", "B"]}]) == {"choices": ["A", "B"]}
    assert prettify([{"type": "TextArea", "text": ["hello"]}]) == "hello"
    spans = [{"type": "Labels", "start": 0, "end": 1, "labels": ["X"]}]
    assert prettify(spans) == [{"start": 0, "end": 1, "labels": ["X"]}]


def test_csv_columns_rename_collisions():
    columns, colliding = csv_columns(["text", "c"], ["c"])
    assert colliding == {"c"}
    assert columns == sorted(
        ["_data_c", "text", "c", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "id"]
    )


def test_conll_tags():
    spans = [{"start": 0, "end": 10, "labels": ["PER"]}, {"start": 20, "end": 25, "labels": ["LOC"]}]
    assert conll_tags("John Smith lives in Paris.", spans) == [
        ("John", "B-PER"),
        ("Smith", "I-PER"),
        ("lives", "O"),
        ("in", "O"),
        ("Paris", "B-LOC"),
        (".", "O"),
    ]
    # adjacent spans with the same label start a new entity
    adjacent = [{"start": 0, "end": 1, "labels": ["X"]}, {"start": 2, "end": 3, "labels": ["X"]}]
    assert conll_tags("a b", adjacent) == [("a", "B-X"), ("b", "B-X")]
    assert conll_tags("no spans here", []) == [("no", "O"), ("spans", "O"), ("here", "O")]
