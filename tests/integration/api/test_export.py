"""Export over HTTP: every format's content parsed and checked, filters, formats listing, errors."""

from __future__ import annotations

import csv
import io
import zipfile

import orjson

from tests.conftest import TEXT_CONFIG

CHOICE = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]

NER_CONFIG = """<View>
  <Labels name="label" toName="text"><Label value="PER"/><Label value="LOC"/></Labels>
  <Text name="text" value="$text"/>
</View>"""

IMAGE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="Cat"/><Label value="Dog"/></RectangleLabels>
</View>"""


def _project(api, config, **fields):
    r = api.post("/api/projects/", json={"title": "e", "label_config": config, **fields})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _seed_text(api):
    pid = _project(api, TEXT_CONFIG)
    tasks = [
        {"data": {"text": "good", "meta_info": {"k": 1}}, "annotations": [{"result": CHOICE, "lead_time": 1.5}]},
        {"data": {"text": "plain"}},
        {"data": {"text": "skipped"}, "annotations": [{"result": [], "was_cancelled": True}]},
        {"data": {"text": "predicted"}, "predictions": [{"result": CHOICE, "score": 0.9}]},
    ]
    r = api.post(f"/api/projects/{pid}/import", json=tasks, params={"return_task_ids": True})
    assert r.status_code == 201, r.text
    return pid, r.json()["task_ids"]


def _export(api, pid, export_type, **params):
    r = api.get(f"/api/projects/{pid}/export", params={"exportType": export_type, **params})
    assert r.status_code == 200, r.text
    return r


def test_json_annotated_only_by_default(api):
    pid, ids = _seed_text(api)
    r = _export(api, pid, "JSON")
    assert r.headers["content-type"].startswith("application/json")
    assert f"project-{pid}-at-" in r.headers["content-disposition"]
    tasks = r.json()
    # tasks with any annotation (a skipped one counts, as in Label Studio)
    assert [t["id"] for t in tasks] == [ids[0], ids[2]]
    first = tasks[0]
    assert first["data"] == {"text": "good", "meta_info": {"k": 1}}
    assert first["annotations"][0]["result"] == CHOICE and first["annotations"][0]["lead_time"] == 1.5
    assert first["total_annotations"] == 1 and first["project"] == pid and first["inner_id"] == 1
    assert first["created_at"].endswith("Z")


def test_json_all_tasks_with_predictions_and_ids(api):
    pid, ids = _seed_text(api)
    tasks = _export(api, pid, "JSON", download_all_tasks="true").json()
    assert [t["id"] for t in tasks] == ids
    assert tasks[3]["predictions"][0]["score"] == 0.9 and tasks[3]["predictions"][0]["result"] == CHOICE
    picked = _export(api, pid, "JSON", download_all_tasks="true", **{"ids[]": [ids[1], ids[3]]}).json()
    assert [t["id"] for t in picked] == [ids[1], ids[3]]
    picked = _export(api, pid, "JSON", download_all_tasks="true", ids=f"{ids[0]},{ids[3]}").json()
    assert [t["id"] for t in picked] == [ids[0], ids[3]]


def test_jsonl(api):
    pid, ids = _seed_text(api)
    body = _export(api, pid, "JSONL", download_all_tasks="true").content
    lines = [orjson.loads(line) for line in body.splitlines()]
    assert [t["id"] for t in lines] == ids and body.endswith(b"\n")


def test_json_min(api):
    pid, ids = _seed_text(api)
    records = _export(api, pid, "JSON_MIN").json()
    # the skipped-only task yields no record; the annotated one yields its flattened result
    assert len(records) == 1
    record = records[0]
    assert record["id"] == ids[0] and record["text"] == "good" and record["sentiment"] == "Positive"
    assert record["lead_time"] == 1.5 and record["annotation_id"] is not None and record["annotator"] is not None
    records = _export(api, pid, "JSON_MIN", download_all_tasks="true").json()
    assert {r["id"] for r in records} == {ids[0], ids[1], ids[3]}


def test_csv_and_tsv(api):
    pid, ids = _seed_text(api)
    for export_type, delimiter in (("CSV", ","), ("TSV", "\t")):
        text = _export(api, pid, export_type, download_all_tasks="true").text
        rows = list(csv.DictReader(io.StringIO(text), delimiter=delimiter))
        assert set(rows[0]) == {
            "annotation_id",
            "annotator",
            "created_at",
            "id",
            "lead_time",
            "meta_info",
            "sentiment",
            "text",
            "updated_at",
        }
        by_id = {int(float(r["id"])): r for r in rows}
        assert set(by_id) == {ids[0], ids[1], ids[3]}
        assert by_id[ids[0]]["sentiment"] == "Positive" and by_id[ids[0]]["text"] == "good"
        assert orjson.loads(by_id[ids[0]]["meta_info"]) == {"k": 1}
        assert by_id[ids[1]]["sentiment"] == "" and by_id[ids[1]]["text"] == "plain"


def test_csv_renames_data_keys_that_collide_with_controls(api):
    pid = _project(api, TEXT_CONFIG)
    api.post(f"/api/projects/{pid}/import", json=[{"text": "t", "sentiment": "raw"}])
    rows = list(csv.DictReader(io.StringIO(_export(api, pid, "CSV", download_all_tasks="true").text)))
    assert rows[0]["_data_sentiment"] == "raw" and rows[0]["sentiment"] == ""


def test_conll2003(api):
    pid = _project(api, NER_CONFIG)
    text = "John Smith lives in Paris."
    spans = [
        {"from_name": "label", "to_name": "text", "type": "labels", "value": {"start": s, "end": e, "labels": [lab]}}
        for s, e, lab in ((0, 10, "PER"), (20, 25, "LOC"))
    ]
    api.post(f"/api/projects/{pid}/import", json=[{"data": {"text": text}, "annotations": [{"result": spans}]}])
    formats = {f["name"]: f["disabled"] for f in api.get(f"/api/projects/{pid}/export/formats").json()}
    assert formats["CONLL2003"] is False and formats["COCO"] is True
    body = _export(api, pid, "CONLL2003").text
    lines = body.splitlines()
    assert lines[0] == "-DOCSTART- -X- O"
    assert lines[1:7] == [
        "John -X- _ B-PER",
        "Smith -X- _ I-PER",
        "lives -X- _ O",
        "in -X- _ O",
        "Paris -X- _ B-LOC",
        ". -X- _ O",
    ]


def _seed_images(api):
    pid = _project(api, IMAGE_CONFIG)

    def box(label, x, y, w, h):
        return {
            "from_name": "box",
            "to_name": "image",
            "type": "rectanglelabels",
            "original_width": 200,
            "original_height": 100,
            "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]},
        }

    tasks = [
        {"data": {"image": "s3://b/cat1.jpg"}, "annotations": [{"result": [box("Cat", 10, 20, 50, 40)]}]},
        {
            "data": {"image": "s3://b/two.jpg"},
            "annotations": [{"result": [box("Dog", 0, 0, 100, 100), box("Cat", 50, 50, 10, 10)]}],
        },
        {"data": {"image": "s3://b/empty.jpg"}},
    ]
    r = api.post(f"/api/projects/{pid}/import", json=tasks, params={"return_task_ids": True})
    assert r.status_code == 201, r.text
    return pid


def test_coco(api):
    pid = _seed_images(api)
    formats = {f["name"]: f["disabled"] for f in api.get(f"/api/projects/{pid}/export/formats").json()}
    assert formats["COCO"] is False and formats["YOLO"] is False and formats["CONLL2003"] is True
    coco = _export(api, pid, "COCO", download_all_tasks="true").json()
    assert coco["categories"] == [{"id": 0, "name": "Cat"}, {"id": 1, "name": "Dog"}]
    assert [i["file_name"] for i in coco["images"]] == ["s3://b/cat1.jpg", "s3://b/two.jpg", "s3://b/empty.jpg"]
    assert coco["images"][0]["width"] == 200 and coco["images"][0]["height"] == 100
    assert len(coco["annotations"]) == 3
    first = coco["annotations"][0]
    assert first["image_id"] == 0 and first["category_id"] == 0
    assert first["bbox"] == [20.0, 20.0, 100.0, 40.0] and first["area"] == 4000.0
    assert [a["category_id"] for a in coco["annotations"][1:]] == [1, 0]
    assert "info" in coco


def test_yolo_zip(api):
    pid = _seed_images(api)
    r = _export(api, pid, "YOLO", download_all_tasks="true")
    assert r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        names = set(archive.namelist())
        assert {"classes.txt", "notes.json", "labels/cat1.txt", "labels/two.txt", "labels/empty.txt"} <= names
        assert archive.read("classes.txt").decode().split() == ["Cat", "Dog"]
        cat = archive.read("labels/cat1.txt").decode().split()
        assert cat[0] == "0" and [round(float(v), 6) for v in cat[1:]] == [0.35, 0.4, 0.5, 0.4]
        two = archive.read("labels/two.txt").decode().splitlines()
        assert [line.split()[0] for line in two] == ["1", "0"]
        assert archive.read("labels/empty.txt") == b""


def test_formats_listing_and_errors(api):
    pid, _ = _seed_text(api)
    formats = api.get(f"/api/projects/{pid}/export/formats").json()
    by_name = {f["name"]: f for f in formats}
    assert {"JSON", "JSON_MIN", "CSV", "TSV", "COCO", "YOLO", "CONLL2003"} <= set(by_name)
    assert by_name["JSON"]["disabled"] is False and by_name["COCO"]["disabled"] is True
    assert by_name["JSON"]["title"] and by_name["CSV"]["description"]
    r = api.get(f"/api/projects/{pid}/export", params={"exportType": "COCO"})
    assert r.status_code == 400 and "COCO" in r.json()["detail"] and "JSON" in r.json()["detail"]
    r = api.get(f"/api/projects/{pid}/export", params={"exportType": "XML"})
    assert r.status_code == 400 and "unknown format" in r.json()["detail"]
    r = api.get(f"/api/projects/{pid}/export", params={"exportType": "JSON", "ids": "x"})
    assert r.status_code == 400 and "ids" in r.json()["validation_errors"]
    assert api.get("/api/projects/9999/export").status_code == 404


def test_export_streams_many_batches(api):
    """More tasks than one batch: every task comes out once, in id order."""
    pid = _project(api, TEXT_CONFIG)
    n = 12_345
    r = api.post(f"/api/projects/{pid}/import", json=[{"text": f"t{i}"} for i in range(n)])
    assert r.status_code == 201
    tasks = _export(api, pid, "JSON", download_all_tasks="true").json()
    assert len(tasks) == n and [t["data"]["text"] for t in tasks[:2]] == ["t0", "t1"]
    assert len({t["id"] for t in tasks}) == n
    rows = list(csv.DictReader(io.StringIO(_export(api, pid, "CSV", download_all_tasks="true").text)))
    assert len(rows) == n and rows[-1]["text"] == f"t{n - 1}"
    assert _export(api, pid, "JSON").json() == []
