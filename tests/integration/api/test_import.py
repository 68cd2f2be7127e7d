"""Task import over HTTP: every body format, files, URLs, inline results, all-or-nothing, limits."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from api_server import events
from tests.conftest import TEXT_CONFIG
from tests.support.waiting import wait_until


def _import(api, pid, body, content_type="application/json", **params):
    return api.post(f"/api/projects/{pid}/import", content=body, headers={"Content-Type": content_type}, params=params)


def _tasks(api, pid):
    return api.get("/api/tasks/", params={"project": pid, "page_size": 1000}).json()["tasks"]


def test_json_list_of_bare_data(api, text_project):
    pid = text_project["id"]
    r = api.post(f"/api/projects/{pid}/import", json=[{"text": f"t{i}"} for i in range(5)])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["task_count"] == 5 and body["annotation_count"] == 0 and body["prediction_count"] == 0
    assert body["data_columns"] == ["text"] and body["found_formats"] == [".json"]
    assert body["file_upload_ids"] == [] and body["duration"] >= 0 and "task_ids" not in body
    tasks = _tasks(api, pid)
    assert [t["data"]["text"] for t in tasks] == [f"t{i}" for i in range(5)]
    assert [t["inner_id"] for t in tasks] == [1, 2, 3, 4, 5]
    assert all(t["overlap"] == 1 and t["is_labeled"] is False and t["project"] == pid for t in tasks)
    assert api.get(f"/api/projects/{pid}/").json()["task_number"] == 5


def test_single_object_and_task_ids(api, text_project):
    pid = text_project["id"]
    r = api.post(f"/api/projects/{pid}/import", params={"return_task_ids": "true"}, json={"text": "one"})
    assert r.status_code == 201, r.text
    ids = r.json()["task_ids"]
    assert len(ids) == 1
    assert api.get(f"/api/tasks/{ids[0]}/").json()["data"] == {"text": "one"}
    # inner ids continue after earlier imports
    r = api.post(f"/api/projects/{pid}/import", params={"return_task_ids": "true"}, json=[{"text": "two"}])
    assert api.get(f"/api/tasks/{r.json()['task_ids'][0]}/").json()["inner_id"] == 2


def test_inline_annotations_and_predictions_set_counters(api):
    r = api.post("/api/projects/", json={"title": "p", "label_config": TEXT_CONFIG, "maximum_annotations": 2})
    pid = r.json()["id"]
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]
    tasks = [
        {
            "data": {"text": "a"},
            "meta": {"source": "x"},
            "annotations": [{"result": result}, {"result": result, "lead_time": 2.5}],
            "predictions": [{"result": result, "score": 0.4, "model_version": "m1"}],
        },
        {"data": {"text": "b"}, "annotations": [{"result": [], "was_cancelled": True}, {"result": result}]},
        {"data": {"text": "c"}, "id": 99, "created_at": "2020-01-01", "total_annotations": 7},
    ]
    r = api.post(f"/api/projects/{pid}/import", json=tasks, params={"return_task_ids": True})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["task_count"], body["annotation_count"], body["prediction_count"]) == (3, 4, 1)
    a, b, c = (api.get(f"/api/tasks/{i}/").json() for i in body["task_ids"])
    assert a["meta"] == {"source": "x"}
    assert (a["total_annotations"], a["cancelled_annotations"], a["total_predictions"], a["is_labeled"]) == (
        2,
        0,
        1,
        True,
    )
    assert a["annotations"][1]["lead_time"] == 2.5 and a["annotations"][0]["result"] == result
    assert a["annotations"][0]["completed_by"] is not None
    assert a["predictions"][0]["score"] == 0.4 and a["predictions"][0]["model_version"] == "m1"
    assert (b["total_annotations"], b["cancelled_annotations"], b["is_labeled"]) == (1, 1, False)
    assert (c["total_annotations"], c["annotations"], c["id"] != 99) == (0, [], True)
    project = api.get(f"/api/projects/{pid}/").json()
    assert project["total_annotations_number"] == 3 and project["total_predictions_number"] == 1


def test_jsonl_csv_tsv_txt_bodies(api, text_project):
    pid = text_project["id"]
    jsonl = b'{"text": "j1"}\n\n{"data": {"text": "j2"}}\n'
    r = _import(api, pid, jsonl, "application/x-ndjson")
    assert r.status_code == 201 and r.json()["task_count"] == 2, r.text
    r = _import(api, pid, 'text,extra\n"c1, with comma",x\nc2,y\n', "text/csv")
    assert r.status_code == 201 and r.json()["task_count"] == 2, r.text
    assert r.json()["data_columns"] == ["extra", "text"]
    r = _import(api, pid, "text\textra\nt1\tx\n", "text/tab-separated-values")
    assert r.status_code == 201 and r.json()["task_count"] == 1, r.text
    r = _import(api, pid, "line one\nline two\n\nline three\n", "text/plain")
    assert r.status_code == 201 and r.json()["task_count"] == 3, r.text
    # ?format= names the format when the content type does not
    r = _import(api, pid, b'{"text": "f1"}\n', "application/octet-stream", format="jsonl")
    assert r.status_code == 201 and r.json()["task_count"] == 1, r.text
    texts = [t["data"]["text"] for t in _tasks(api, pid)]
    assert texts == ["j1", "j2", "c1, with comma", "c2", "t1", "line one", "line two", "line three", "f1"]
    assert [t["data"].get("extra") for t in _tasks(api, pid)][2:5] == ["x", "y", "x"]


def test_multipart_files_record_uploads(api, text_project):
    pid = text_project["id"]
    files = [
        ("file", ("a.json", orjson.dumps([{"text": "a1"}, {"text": "a2"}]), "application/json")),
        ("file", ("b.csv", b"text\nb1\n", "text/csv")),
        ("file", ("c.jsonl", b'{"text": "c1"}\n', "application/octet-stream")),
        ("file", ("d.txt", b"d1\nd2\n", "text/plain")),
        ("file", ("e.tsv", b"text\textra\ne1\tx\n", "text/plain")),
    ]
    r = api.post(f"/api/projects/{pid}/import", files=files, params={"return_task_ids": True})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["task_count"] == 7
    assert len(body["file_upload_ids"]) == 5
    assert body["found_formats"] == [".json", ".csv", ".jsonl", ".txt", ".tsv"]
    assert body["could_be_tasks_list"] is True
    first = api.get(f"/api/tasks/{body['task_ids'][0]}/").json()
    assert first["file_upload"] == body["file_upload_ids"][0]


def test_large_imports_span_batches(api, text_project):
    pid = text_project["id"]
    n = 45_001
    r = api.post(f"/api/projects/{pid}/import", json=[{"text": f"t{i}"} for i in range(n)])
    assert r.status_code == 201 and r.json()["task_count"] == n, r.text
    body = b"".join(orjson.dumps({"text": f"l{i}"}) + b"\n" for i in range(n))
    r = _import(api, pid, body, "application/x-ndjson", return_task_ids="true")
    assert r.status_code == 201 and r.json()["task_count"] == n
    assert len(set(r.json()["task_ids"])) == n
    assert api.get(f"/api/projects/{pid}/").json()["task_number"] == 2 * n
    last = api.get("/api/tasks/", params={"project": pid, "page": (2 * n + 999) // 1000, "page_size": 1000}).json()
    assert last["tasks"][-1]["inner_id"] == 2 * n and last["tasks"][-1]["data"] == {"text": f"l{n - 1}"}


def test_bad_row_rejects_everything(api, text_project):
    pid = text_project["id"]
    api.post(f"/api/projects/{pid}/import", json=[{"text": "kept"}])
    tasks = [{"text": f"t{i}"} for i in range(30_000)]
    tasks[25_000] = {"txt": "typo"}
    r = api.post(f"/api/projects/{pid}/import", json=tasks)
    assert r.status_code == 400, r.text
    body = r.json()
    assert list(body["validation_errors"]) == ["row 25001"]
    assert "$text" in body["validation_errors"]["row 25001"][0]
    assert "row 25001" in body["detail"]
    # the first 20,000 were already written in this transaction: all rolled back
    assert [t["data"]["text"] for t in _tasks(api, pid)] == ["kept"]
    project = api.get(f"/api/projects/{pid}/").json()
    assert project["task_number"] == 1


def test_bad_rows_in_every_format_are_named(api, text_project):
    pid = text_project["id"]
    cases = [
        (b'[{"text": "a"}, "oops"]', "application/json", "row 2", "must be a JSON object"),
        (b'[{"data": {"text": "a"}, "colour": 1}]', "application/json", "row 1", "unknown task field(s): colour"),
        (b'[{"data": {"text": "a"}, "annotations": {}}]', "application/json", "row 1", "annotations must be a list"),
        (
            b'[{"data": {"text": "a"}, "predictions": [{"result": [], "score": "high"}]}]',
            "application/json",
            "row 1",
            "score must be a number",
        ),
        (b'{"text": "a"}\n{"text": "b"\n', "application/x-ndjson", "row 2", "malformed JSON on line 2"),
        (b'{"text": "a"}\n{"other": "b"}\n', "application/x-ndjson", "row 2", "$text"),
        (b"text,b\nx,1\ny\n", "text/csv", "row 2", "has 1 values, but the header has 2 columns"),
        (b'text\n"unterminated\n', "text/csv", "row", "malformed CSV"),
        (b"other\nx\n", "text/csv", "row 1", "$text"),
    ]
    for body, ctype, key, message in cases:
        r = _import(api, pid, body, ctype)
        assert r.status_code == 400, (body, r.text)
        errors = r.json()["validation_errors"]
        assert any(k.startswith(key) for k in errors), (body, errors)
        assert any(message in m for msgs in errors.values() for m in msgs), (body, errors)
    assert _tasks(api, pid) == []


def test_malformed_json_names_position(api, text_project):
    r = _import(api, text_project["id"], b'[{"text": "a"},\n {"text": }]', "application/json")
    assert r.status_code == 400
    assert "line 2" in r.json()["detail"] and "malformed JSON" in r.json()["detail"]
    r = _import(api, text_project["id"], b"", "application/json")
    assert r.status_code == 400 and "empty" in r.json()["detail"]


def test_wrong_content_type_is_415(api, text_project):
    r = _import(api, text_project["id"], b"<tasks/>", "application/xml")
    assert r.status_code == 415
    assert "application/xml" in r.json()["detail"] and "text/csv" in r.json()["detail"]
    files = [("file", ("image.png", b"\x89PNG", "image/png"))]
    r = api.post(f"/api/projects/{text_project['id']}/import", files=files)
    assert r.status_code == 415 and "image.png" in r.json()["detail"]
    assert _tasks(api, text_project["id"]) == []


def test_txt_needs_single_variable(api):
    config = "<View><Text name='a' value='$a'/><Text name='b' value='$b'/></View>"
    pid = api.post("/api/projects/", json={"title": "two", "label_config": config}).json()["id"]
    r = _import(api, pid, "x\n", "text/plain")
    assert r.status_code == 400 and "exactly one data field" in r.json()["detail"]


def test_uri_list_and_url_fields(api, text_project):
    pid = text_project["id"]
    r = _import(api, pid, "# images\nhttp://example.invalid/1.jpg\nhttp://example.invalid/2.jpg\n", "text/uri-list")
    assert r.status_code == 201 and r.json()["task_count"] == 2, r.text
    assert _tasks(api, pid)[1]["data"] == {"text": "http://example.invalid/2.jpg"}

    files = {"/tasks.json": orjson.dumps([{"text": "u1"}, {"text": "u2"}]), "/tasks.csv": b"text\nu3\n"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = files.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        r = api.post(f"/api/projects/{pid}/import", data={"url": [f"{base}/tasks.json", f"{base}/tasks.csv"]})
        assert r.status_code == 201, r.text
        assert r.json()["task_count"] == 3 and len(r.json()["file_upload_ids"]) == 2
        r = api.post(f"/api/projects/{pid}/import", data={"url": f"{base}/missing.json"})
        assert r.status_code == 400 and "404" in r.json()["detail"]
    finally:
        server.shutdown()
        server.server_close()
    assert len(_tasks(api, pid)) == 5


def test_events_published(api, text_project):
    seen = []

    def subscriber(session, project_id, action, objects):
        seen.append((project_id, action, objects))

    events.subscribe(subscriber)
    try:
        result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Neutral"]}}]
        r = api.post(
            f"/api/projects/{text_project['id']}/import",
            json=[{"text": "a"}, {"data": {"text": "b"}, "annotations": [{"result": result}]}],
        )
        assert r.status_code == 201
        files = [("file", ("a.csv", b"text\nf1\n", "text/csv")), ("file", ("b.txt", b"f2\nf3\n", "text/plain"))]
        assert api.post(f"/api/projects/{text_project['id']}/import", files=files).status_code == 201
        # Events leave through the outbox, fanned out off the request path: wait for both imports'.
        wait_until(lambda: len([a for _, a, _ in seen if a == "TASKS_CREATED"]) >= 2, "both imports' TASKS_CREATED", 30)
    finally:
        events.unsubscribe(subscriber)
    created = [o for _, a, o in seen if a == "TASKS_CREATED"]
    assert [t["data"]["text"] for t in created[1]["tasks"]] == ["f1", "f2", "f3"]
    assert created[1]["task_count"] == 3 and len(created[1]["task_id_ranges"]) == 1
    actions = {a: o for _, a, o in seen[:2]}
    assert actions["TASKS_CREATED"]["task_count"] == 2
    assert [t["data"] for t in actions["TASKS_CREATED"]["tasks"]] == [{"text": "a"}, {"text": "b"}]
    assert actions["ANNOTATIONS_CREATED"]["annotation_count"] == 1


def test_roles(api, live_server, text_project):
    r = api.post("/api/users/", json={"username": "ann", "role": "annotator"})
    assert r.status_code == 201, r.text
    token = api.post(f"/api/users/{r.json()['id']}/token/").json()["token"]
    with live_server.client(token=token) as annotator:
        r = annotator.post(f"/api/projects/{text_project['id']}/import", json=[{"text": "x"}])
    assert r.status_code in (403, 404)
    assert api.post("/api/projects/999/import", json=[{"text": "x"}]).status_code == 404


def test_import_predictions_for_existing_tasks(api, text_project):
    pid = text_project["id"]
    ids = api.post(f"/api/projects/{pid}/import", json=[{"text": "a"}, {"text": "b"}], params={"return_task_ids": 1})
    a, b = ids.json()["task_ids"]
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Neutral"]}}]
    r = api.post(f"/api/projects/{pid}/import/predictions", json=[{"task": a, "result": result, "score": 0.2}])
    assert r.status_code == 201 and r.json() == {"created": 1}, r.text
    assert api.get(f"/api/tasks/{a}/").json()["total_predictions"] == 1
    r = api.post(f"/api/projects/{pid}/import/predictions", json=[{"task": b, "result": result}, {"task": 12345}])
    assert r.status_code == 400 and "row 2" in r.json()["validation_errors"]
    assert api.get(f"/api/tasks/{b}/").json()["total_predictions"] == 0


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_body_over_limit_is_413(server_pool, backend):
    server = server_pool.new(backend, KUBELABEL_MAX_UPLOAD_MB=1)
    with server.client() as client:
        pid = client.post("/api/projects/", json={"title": "p", "label_config": TEXT_CONFIG}).json()["id"]
        big = orjson.dumps([{"text": "x" * 1000} for _ in range(1500)])
        r = client.post(f"/api/projects/{pid}/import", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "KUBELABEL_MAX_UPLOAD_MB" in r.json()["detail"]

        def chunks():
            for _ in range(1500):
                yield orjson.dumps({"text": "x" * 1000}) + b"\n"

        r = client.post(
            f"/api/projects/{pid}/import", content=chunks(), headers={"Content-Type": "application/x-ndjson"}
        )
        assert r.status_code == 413
        assert client.get(f"/api/projects/{pid}/").json()["task_number"] == 0
