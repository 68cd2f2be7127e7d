"""Input limits (api_server/common/inputs.py): values the database or a JSON encoder cannot take are
a 400 naming the field, on both databases, wherever they come in (body, query, path, imports)."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import TEXT_CONFIG


def _bad(r, field: str) -> dict:
    assert r.status_code == 400, (r.status_code, r.text)
    body = r.json()
    assert body["status_code"] == 400
    assert field in body["validation_errors"], body
    return body


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _task_count(api, pid) -> int:
    return api.get(f"/api/projects/{pid}/").json()["task_number"]


def test_nul_character_in_a_body_field(api):
    r = api.post("/api/projects/", json={"title": "a\x00b", "label_config": TEXT_CONFIG})
    assert "NUL" in _bad(r, "title")["detail"]


def test_nul_character_in_a_body_key_and_nested_value(api, text_project):
    pid = text_project["id"]
    r = api.post("/api/tasks/", json={"project": pid, "data": {"text": "x", "k\x00": 1}})
    _bad(r, "data.k\\u0000")
    r = api.post("/api/tasks/", json={"project": pid, "data": {"text": ["ok", "n\x00"]}})
    _bad(r, "data.text[1]")


def test_nul_character_in_query_and_path(api):
    _bad(api.get("/api/projects/", params={"title": "a\x00"}), "query.title")
    _bad(api.get("/api/projects/1%00/"), "path.project_id")


def test_unpaired_surrogate_in_body(api):
    r = api.post(
        "/api/projects/",
        content=b'{"title": "\\ud800", "label_config": "<View/>"}',
        headers={"content-type": "application/json"},
    )
    _bad(r, "title")


@pytest.mark.parametrize(
    "path,field",
    [
        ("/api/projects/2147483648/", "path.project_id"),
        ("/api/users/2147483648/", "path.user_id"),
        ("/api/webhooks/99999999999/", "path.webhook_id"),
        ("/api/tasks/9223372036854775808/", "path.task_id"),
        ("/api/annotations/-9223372036854775809/", "path.annotation_id"),
        ("/api/tasks/?project=2147483648", "query.project"),
        ("/api/predictions/?task=99999999999999999999", "query.task"),
    ],
)
def test_integers_past_the_columns_in_paths_and_queries(api, path, field):
    _bad(api.get(path), field)


def test_big_ids_that_fit_are_not_found(api):
    # BIGINT ids between 2^31 and 2^63 are plain missing rows, not errors.
    assert api.get("/api/tasks/2147483648/").status_code == 404
    assert api.get("/api/tasks/9223372036854775807/").status_code == 404


def test_integers_past_the_columns_in_bodies(api, text_project):
    pid = text_project["id"]
    _bad(api.post("/api/tasks/", json={"project": 2**31, "data": {"text": "x"}}), "project")
    _bad(api.post("/api/tasks/", json={"project": pid, "data": {"text": "x", "n": 2**70}}), "data.n")
    _bad(api.patch(f"/api/projects/{pid}/", json={"maximum_annotations": 2**31}), "maximum_annotations")


def test_paging_past_the_database(api):
    assert api.get("/api/projects/", params={"page": 2**62}).status_code == 400
    r = api.get("/api/projects/", params={"ids": "99999999999,1"})
    assert r.status_code == 200, r.text


def test_null_for_a_required_user_field(api):
    r = api.post("/api/users/", json={"username": "nully"})
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    _bad(api.patch(f"/api/users/{uid}/", json={"email": None}), "email")
    assert api.patch(f"/api/users/{uid}/", json={"email": "n@example.com"}).status_code == 200


def test_json_nested_too_deep(api, text_project):
    pid = text_project["id"]
    for depth in (101, 300, 1000):
        deep = b"[" * depth + b"]" * depth
        body = b'{"project": %d, "data": {"text": "x", "deep": %s}}' % (pid, deep)
        r = api.post("/api/tasks/", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        assert "nested deeper than 100 levels" in r.json()["detail"]
    body = b"[" * 5000 + b"]" * 5000
    r = api.post("/api/projects/", content=body, headers={"content-type": "application/json"})
    _bad(r, "body")
    # 97 lists inside the data: 99 levels with the body and the data object, inside the limit of 100
    r = api.post("/api/tasks/", json={"project": pid, "data": {"text": "x", "deep": _nested(97)}})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("number", [b"1e999", b"-1e999", b"NaN", b"Infinity"])
def test_non_finite_numbers(api, text_project, number):
    pid = text_project["id"]
    task = api.post("/api/tasks/", json={"project": pid, "data": {"text": "x"}}).json()
    body = b'{"task": %d, "result": [], "score": %s}' % (task["id"], number)
    r = api.post("/api/predictions/", content=body, headers={"content-type": "application/json"})
    _bad(r, "score")


def test_import_refuses_each_rule_naming_the_row(api, text_project):
    pid = text_project["id"]
    cases = [
        [{"text": "ok"}, {"text": "a\x00b"}],
        [{"text": "ok"}, {"text": "x", "k\x00": "v"}],
        [{"text": "ok"}, {"data": {"text": "x"}, "meta": {"m": _nested(150)}}],
        [{"text": "ok"}, {"text": "x", "deep": _nested(300)}],
        [{"text": "ok"}, {"data": {"text": "x"}, "predictions": [{"result": [{"value": {"a\x00": 1}}]}]}],
    ]
    for tasks in cases:
        r = api.post(f"/api/projects/{pid}/import", json=tasks)
        _bad(r, "row 2")
    jsonl = b'{"text": "ok"}\n' + orjson.dumps({"text": "a\x00"}) + b"\n"
    r = api.post(f"/api/projects/{pid}/import", content=jsonl, headers={"content-type": "application/x-ndjson"})
    _bad(r, "row 2")
    csv_body = b'text\nok\n"a\x00b"\n'
    r = api.post(f"/api/projects/{pid}/import", content=csv_body, headers={"content-type": "text/csv"})
    _bad(r, "row 2")
    files = {"file": ("tasks.tsv", b"text\nok\nbad\x00\n", "text/tab-separated-values")}
    r = api.post(f"/api/projects/{pid}/import", files=files)
    assert r.status_code == 400, r.text
    assert _task_count(api, pid) == 0


def test_predictions_import_refuses_each_rule(api, text_project):
    pid = text_project["id"]
    r = api.post(f"/api/projects/{pid}/import", json=[{"text": "x"}], params={"return_task_ids": True})
    tid = r.json()["task_ids"][0]
    items = [{"task": tid, "result": [], "model_version": "v\x00"}]
    _bad(api.post(f"/api/projects/{pid}/import/predictions", json=items), "row 1")
    items = [{"task": 2**63, "result": []}]
    _bad(api.post(f"/api/projects/{pid}/import/predictions", json=items), "row 1")


def test_values_the_database_refuses_are_400(api, live_server, text_project):
    # PostgreSQL refused a 255-character email (varchar(254)) with a 500; SQLite stored it.
    _bad(api.post("/api/users/", json={"username": "long", "email": "e" * 255}), "email")
    task = api.post("/api/tasks/", json={"project": text_project["id"], "data": {"text": "x"}}).json()
    # A reference to no row: PostgreSQL's foreign key answers, as a 400 naming the field (it was a 500).
    # SQLite does not check this reference and stores it.
    r = api.post(f"/api/tasks/{task['id']}/annotations/", json={"result": [], "parent_prediction": 2**40})
    if live_server.backend == "postgres":
        _bad(r, "parent_prediction")
    else:
        assert r.status_code == 201, r.text


def test_export_ids_past_64_bits(api, text_project):
    r = api.get(f"/api/projects/{text_project['id']}/export", params={"ids": "1,99999999999999999999"})
    _bad(r, "ids")
