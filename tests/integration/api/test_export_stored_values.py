"""Exports never break on stored data: every awkward value the API accepts, and values it now refuses
written by SQL straight into the tables (rows from before the input limits, or from other paths),
export in every format, each read back whole and parsed."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from sqlalchemy import text

from tests.conftest import TEXT_CONFIG

NER_CONFIG = """<View>
  <Labels name="label" toName="text"><Label value="PER"/><Label value="LOC"/></Labels>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text"><Choice value="Positive"/></Choices>
</View>"""

IMAGE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="Cat"/><Label value="Dog"/></RectangleLabels>
</View>"""

TEXT_FORMATS = ["JSON", "JSON_MIN", "JSONL", "CSV", "TSV", "CONLL2003"]
IMAGE_FORMATS = ["JSON", "JSON_MIN", "JSONL", "CSV", "TSV", "COCO", "YOLO"]


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _strict_json(raw: bytes | str):
    """Standard JSON only: NaN, Infinity and the like are refused."""

    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(raw, parse_constant=refuse)


# Accepted by the API: the widest values inside the limits.
AWKWARD_DATA = {
    "text": 'Ann went to Paris, "quoted"; tab\tnewline\n\u2028 naïve 😀',
    "max": 2**63 - 1,
    "min": -(2**63),
    "huge_float": 1.7976931348623157e308,
    "tiny": 5e-324,
    "deep": _nested(97),
    'key, with "quotes"\tand tab': "v",
    "": "empty key",
    "nothing": None,
}
SPAN = {"from_name": "label", "to_name": "text", "type": "labels", "value": {"start": 0, "end": 3, "labels": ["PER"]}}


def _project(api, config) -> int:
    r = api.post("/api/projects/", json={"title": "stored", "label_config": config})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _import(api, pid, tasks) -> list[int]:
    r = api.post(f"/api/projects/{pid}/import", json=tasks, params={"return_task_ids": True})
    assert r.status_code == 201, r.text
    return r.json()["task_ids"]


def _write_by_sql(server, ids: list[int], sqlite_only_data: dict | None) -> None:
    """Values the API refuses today, as rows written before the limits could hold them."""
    pg = server.backend == "postgres"
    doc = "CAST(:d AS jsonb)" if pg else ":d"
    deep = "[" * 300 + "]" * 300
    refused = '{"text": "Ann big", "big": 123456789012345678901234567890, "inf": 1e999, "deep": ' + deep + "}"
    with server.session_factory() as session:
        session.execute(text(f"UPDATE tasks SET data = {doc} WHERE id = :id"), {"d": refused, "id": ids[0]})
        inf = "'Infinity'::float8" if pg else "9e999"
        nan = "'NaN'::float8" if pg else "NULL"
        session.execute(text(f"UPDATE predictions SET score = {inf}"))
        session.execute(text(f"UPDATE annotations SET lead_time = {inf} WHERE task_id = :id"), {"id": ids[0]})
        session.execute(text(f"UPDATE annotations SET lead_time = {nan} WHERE task_id = :id"), {"id": ids[1]})
        if sqlite_only_data is not None and not pg:
            # PostgreSQL cannot hold NUL characters at all; SQLite stores them.
            session.execute(text("UPDATE tasks SET data = :d WHERE id = :id"), {"d": sqlite_only_data, "id": ids[1]})
        session.commit()


def _read_back(api, pid, fmt) -> int:
    """The export, parsed whole; the number of records (or lines) read."""
    r = api.get(f"/api/projects/{pid}/export", params={"exportType": fmt, "download_all_tasks": True})
    assert r.status_code == 200, r.text
    raw = r.content
    if fmt in ("JSON", "JSON_MIN"):
        return len(_strict_json(raw))
    if fmt == "JSONL":
        return len([_strict_json(line) for line in raw.splitlines() if line.strip()])
    if fmt in ("CSV", "TSV"):
        rows = list(csv.reader(io.StringIO(raw.decode(), newline=""), delimiter="\t" if fmt == "TSV" else ","))
        assert all(len(row) == len(rows[0]) for row in rows), rows
        return len(rows) - 1
    if fmt == "CONLL2003":
        lines = raw.decode().split("\n")
        assert lines[0] == "-DOCSTART- -X- O"
        assert all(len(line.split(" ")) == 4 for line in lines[1:] if line), lines
        return len(lines)
    if fmt == "COCO":
        coco = _strict_json(raw)
        return len(coco["images"])
    assert fmt == "YOLO"
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        for name in archive.namelist():
            content = archive.read(name)
            if name.endswith(".json"):
                _strict_json(content)
        return len(archive.namelist())


def test_text_project_exports_every_format(api, live_server):
    pid = _project(api, NER_CONFIG)
    ann = {"result": [SPAN], "lead_time": 1.7976931348623157e308}
    tasks = [
        {"data": dict(AWKWARD_DATA), "annotations": [ann], "predictions": [{"result": [SPAN], "score": 1e308}]},
        {"data": {"text": "Bob in London", "n": 1}, "annotations": [ann], "predictions": [{"result": [], "score": 0}]},
        {"data": dict(AWKWARD_DATA)},
    ]
    ids = _import(api, pid, tasks)
    for fmt in TEXT_FORMATS:
        assert _read_back(api, pid, fmt) >= 3, fmt
    nul = '{"text": "a\\u0000b", "k\\u0000": "v\\u0000", "n": 1}'
    _write_by_sql(live_server, ids, nul)
    for fmt in TEXT_FORMATS:
        assert _read_back(api, pid, fmt) >= 3, fmt
    # The stored values come back: JSON text where they fit, null where JSON has no number.
    exported = {t["id"]: t for t in _strict_json(api.get(f"/api/projects/{pid}/export").content)}
    first = exported[ids[0]]
    assert first["data"]["big"] == 123456789012345678901234567890
    assert first["predictions"][0]["score"] is None
    assert first["annotations"][0]["lead_time"] is None


@pytest.mark.parametrize("fmt", IMAGE_FORMATS)
def test_image_project_exports_every_format(api, live_server, fmt):
    pid = _project(api, IMAGE_CONFIG)
    box = {
        "from_name": "box",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": 2**63 - 1,
        "original_height": 1.7976931348623157e308,
        "value": {"x": 1e308, "y": -1e308, "width": 50, "height": 5e-324, "rectanglelabels": ["Cat"]},
    }
    tasks = [
        {"data": {"image": "s3://b/cat 😀.jpg", "max": 2**63 - 1}, "annotations": [{"result": [box]}]},
        {"data": {"image": "s3://b/dog.jpg", "deep": _nested(97)}, "annotations": [{"result": [box]}]},
    ]
    ids = _import(api, pid, tasks)
    assert _read_back(api, pid, fmt) >= 1
    nul = '{"image": "s3://b/a\\u0000b.jpg", "k\\u0000": 1}'
    _write_by_sql(live_server, ids, nul)
    assert _read_back(api, pid, fmt) >= 1


def test_choices_project_csv_with_stored_refused_values(api, live_server):
    pid = _project(api, TEXT_CONFIG)
    choice = {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}
    ids = _import(api, pid, [{"data": {"text": "a"}, "annotations": [{"result": [choice]}]}, {"text": "b"}])
    _write_by_sql(live_server, ids, '{"text": "\\u0000", "\\u0000": 1}')
    for fmt in ("CSV", "TSV", "JSON_MIN"):
        assert _read_back(api, pid, fmt) >= 2
