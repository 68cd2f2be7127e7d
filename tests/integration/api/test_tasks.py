"""Task endpoints over HTTP: list shapes, pagination, filters, CRUD, bulk delete, roles, errors."""

from __future__ import annotations

from tests.conftest import TEXT_CONFIG

CHOICE = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Negative"]}}]


def _seed(api, pid):
    """Five tasks: 0 labeled, 1 with a prediction, 2 skipped only, 3 and 4 plain."""
    tasks = [
        {"data": {"text": "t0"}, "annotations": [{"result": CHOICE}]},
        {"data": {"text": "t1"}, "predictions": [{"result": CHOICE, "score": 0.5}]},
        {"data": {"text": "t2"}, "annotations": [{"result": [], "was_cancelled": True}]},
        {"data": {"text": "t3"}},
        {"data": {"text": "t4"}, "meta": {"m": 1}},
    ]
    r = api.post(f"/api/projects/{pid}/import", json=tasks, params={"return_task_ids": True})
    assert r.status_code == 201, r.text
    return r.json()["task_ids"]


def _ids(response):
    return [t["id"] for t in response.json()["tasks"]]


def test_list_shape_pagination_and_totals(api, text_project):
    pid = text_project["id"]
    ids = _seed(api, pid)
    r = api.get("/api/tasks/", params={"project": pid, "page_size": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 5 and body["total_annotations"] == 1 and body["total_predictions"] == 1
    assert _ids(r) == ids[:2]
    task = body["tasks"][0]
    for key in (
        "id",
        "data",
        "meta",
        "total_annotations",
        "cancelled_annotations",
        "total_predictions",
        "is_labeled",
        "overlap",
        "inner_id",
        "project",
        "created_at",
        "updated_at",
    ):
        assert key in task, key
    assert "annotations" not in task  # fields=task_only is the default
    assert _ids(api.get("/api/tasks/", params={"project": pid, "page_size": 2, "page": 3})) == ids[4:]
    # past the end: an empty page, not an error (the SDK pager stops there)
    r = api.get("/api/tasks/", params={"project": pid, "page_size": 2, "page": 4})
    assert r.status_code == 200 and r.json()["tasks"] == [] and r.json()["total"] == 5
    # keyset pagination
    assert _ids(api.get("/api/tasks/", params={"project": pid, "after": ids[2]})) == ids[3:]
    full = api.get("/api/tasks/", params={"project": pid, "fields": "all"}).json()["tasks"]
    assert full[0]["annotations"][0]["result"] == CHOICE and full[1]["predictions"][0]["score"] == 0.5


def test_filters(api, text_project):
    pid = text_project["id"]
    ids = _seed(api, pid)

    def listed(**params):
        return _ids(api.get("/api/tasks/", params={"project": pid, **params}))

    assert listed(is_labeled="true") == [ids[0]]
    assert listed(is_labeled="false") == ids[1:]
    assert listed(only_annotated="true") == [ids[0], ids[2]]
    assert listed(only_annotated="false") == [ids[1], ids[3], ids[4]]
    assert listed(has_predictions="true") == [ids[1]]
    assert listed(has_predictions="false", is_labeled="false") == [ids[2], ids[3], ids[4]]
    assert listed(ids=f"{ids[4]},{ids[0]}") == [ids[0], ids[4]]
    assert _ids(api.get("/api/tasks/", params=[("project", pid), ("ids[]", ids[1]), ("ids[]", ids[2])])) == ids[1:3]
    r = api.get("/api/tasks/", params={"project": pid, "ids": "1,x"})
    assert r.status_code == 400 and "ids" in r.json()["validation_errors"]
    r = api.get("/api/tasks/", params={"project": pid, "is_labeled": "maybe"})
    assert r.status_code == 400 and "is_labeled" in r.json()["validation_errors"]


def test_project_task_list(api, text_project):
    pid = text_project["id"]
    ids = _seed(api, pid)
    r = api.get(f"/api/projects/{pid}/tasks/", params={"page_size": 3})
    assert r.status_code == 200 and r.headers["x-total-count"] == "5"
    tasks = r.json()
    assert [t["id"] for t in tasks] == ids[:3]
    assert tasks[0]["annotations"][0]["result"] == CHOICE and tasks[1]["predictions"][0]["score"] == 0.5
    other = api.post("/api/projects/", json={"title": "other", "label_config": TEXT_CONFIG}).json()["id"]
    assert api.get(f"/api/projects/{other}/tasks/").json() == []
    assert api.get("/api/tasks/").json()["total"] == 5  # all visible projects


def test_create_get_update_delete(api, text_project):
    pid = text_project["id"]
    r = api.post("/api/tasks/", json={"project": pid, "data": {"text": "new"}, "meta": {"a": 1}})
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["data"] == {"text": "new"} and task["meta"] == {"a": 1} and task["inner_id"] == 1
    assert task["overlap"] == 1 and task["is_labeled"] is False
    second = api.post("/api/tasks/", json={"project": pid, "data": {"text": "second"}}).json()
    assert second["inner_id"] == 2

    got = api.get(f"/api/tasks/{task['id']}/").json()
    assert got["annotations"] == [] and got["predictions"] == [] and got["project"] == pid

    r = api.patch(f"/api/tasks/{task['id']}/", json={"data": {"text": "edited"}})
    assert r.status_code == 200 and r.json()["data"] == {"text": "edited"} and r.json()["meta"] == {"a": 1}
    r = api.patch(f"/api/tasks/{task['id']}/", json={"data": {"other": "x"}})
    assert r.status_code == 400 and "$text" in r.json()["detail"]
    r = api.patch(f"/api/tasks/{task['id']}/", json={"colour": "red"})
    assert r.status_code == 400 and r.json()["validation_errors"] == {"colour": ["unknown field"]}

    assert api.delete(f"/api/tasks/{task['id']}/").status_code == 204
    assert api.get(f"/api/tasks/{task['id']}/").status_code == 404
    assert api.delete(f"/api/tasks/{task['id']}/").status_code == 404
    assert api.get(f"/api/projects/{pid}/").json()["task_number"] == 1


def test_create_errors_are_named(api, text_project):
    pid = text_project["id"]
    r = api.post("/api/tasks/", json={"project": pid, "data": {"body": "x"}})
    assert r.status_code == 400 and "$text" in r.json()["detail"]
    r = api.post("/api/tasks/", json={"project": pid})
    assert r.status_code == 400 and "data" in r.json()["validation_errors"]
    r = api.post("/api/tasks/", json={"project": pid, "data": {"text": "x"}, "bogus": 1})
    assert r.status_code == 400 and r.json()["validation_errors"] == {"bogus": ["unknown field"]}
    r = api.post("/api/tasks/", json={"project": 9999, "data": {"text": "x"}})
    assert r.status_code == 404
    # Label Studio client fields are accepted
    r = api.post("/api/tasks/", json={"project": pid, "data": {"text": "x"}, "is_labeled": False, "overlap": 1})
    assert r.status_code == 201


def test_bulk_delete(api, text_project):
    pid = text_project["id"]
    ids = _seed(api, pid)
    r = api.request("DELETE", f"/api/projects/{pid}/tasks/", json={"ids": [ids[0]]})
    assert r.status_code == 204
    assert api.delete(f"/api/projects/{pid}/tasks/", params={"ids": f"{ids[1]},{ids[2]}"}).status_code == 204
    assert _ids(api.get("/api/tasks/", params={"project": pid})) == ids[3:]
    project = api.get(f"/api/projects/{pid}/").json()
    assert project["task_number"] == 2 and project["total_annotations_number"] == 0
    assert api.delete(f"/api/projects/{pid}/tasks/").status_code == 204
    assert api.get("/api/tasks/", params={"project": pid}).json()["total"] == 0


def test_roles(api, live_server, text_project):
    pid = text_project["id"]
    ids = _seed(api, pid)
    users = {}
    for name, role in (("ann", "annotator"), ("outsider", "annotator")):
        created = api.post("/api/users/", json={"username": name, "role": role}).json()
        users[name] = (created["id"], api.post(f"/api/users/{created['id']}/token/").json()["token"])
    r = api.post(f"/api/projects/{pid}/members/", json={"user": users["ann"][0], "role": "annotator"})
    assert r.status_code in (200, 201), r.text
    with live_server.client(token=users["ann"][1]) as annotator:
        assert annotator.get("/api/tasks/", params={"project": pid}).json()["total"] == 5
        # annotators see only their own annotations (the admin made this one)
        assert annotator.get(f"/api/tasks/{ids[0]}/").json()["annotations"] == []
        assert annotator.delete(f"/api/tasks/{ids[3]}/").status_code == 403
        assert annotator.delete(f"/api/projects/{pid}/tasks/").status_code == 403
        r = annotator.post("/api/tasks/", json={"project": pid, "data": {"text": "x"}})
        assert r.status_code == 403 and "manager" in r.json()["detail"]
    with live_server.client(token=users["outsider"][1]) as outsider:
        assert outsider.get("/api/tasks/").json()["total"] == 0
        assert outsider.get(f"/api/tasks/{ids[0]}/").status_code == 403
    assert api.get("/api/tasks/", params={"project": pid}).json()["total"] == 5
