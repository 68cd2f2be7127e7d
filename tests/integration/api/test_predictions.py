"""Predictions over HTTP: CRUD, filters, result validation, counters and prediction_score, roles."""

from __future__ import annotations

from api_server.db.models import Task
from tests.conftest import TEXT_CONFIG
from tests.support.labeling import choice, member, project_with_tasks


def test_create_list_get_update_delete(api):
    project, (t1, t2) = project_with_tasks(api, TEXT_CONFIG, 2)
    r = api.post("/api/predictions/", json={"task": t1, "result": choice(), "score": 0.4, "model_version": "v1"})
    assert r.status_code == 201, r.text
    p1 = r.json()
    assert p1["task"] == t1 and p1["project"] == project["id"] and p1["score"] == 0.4 and p1["model_version"] == "v1"
    p2 = api.post("/api/predictions/", json={"task": t2, "result": choice("Negative"), "score": 0.9}).json()

    assert [p["id"] for p in api.get("/api/predictions/", params={"task": t1}).json()] == [p1["id"]]
    assert len(api.get("/api/predictions/", params={"project": project["id"]}).json()) == 2
    assert len(api.get("/api/predictions/").json()) == 2
    assert api.get(f"/api/predictions/{p2['id']}/").json()["result"] == choice("Negative")

    t = api.get(f"/api/tasks/{t1}/").json()
    assert t["total_predictions"] == 1
    r = api.patch(f"/api/predictions/{p1['id']}/", json={"score": 0.1, "model_version": "v2"})
    assert r.status_code == 200 and r.json()["score"] == 0.1 and r.json()["model_version"] == "v2"
    r = api.put(f"/api/predictions/{p1['id']}/", json={"result": choice("Neutral")})
    assert r.status_code == 200 and r.json()["result"] == choice("Neutral")
    assert api.get(f"/api/projects/{project['id']}/").json()["total_predictions_number"] == 2

    assert api.delete(f"/api/predictions/{p1['id']}/").status_code == 204
    assert api.get(f"/api/predictions/{p1['id']}/").status_code == 404
    assert api.get(f"/api/tasks/{t1}/").json()["total_predictions"] == 0


def test_model_version_defaults_to_the_projects(api):
    project, (task,) = project_with_tasks(api, TEXT_CONFIG, 1, model_version="baseline")
    r = api.post("/api/predictions/", json={"task": task, "result": choice()})
    assert r.status_code == 201 and r.json()["model_version"] == "baseline" and r.json()["score"] is None


def test_results_are_validated_like_annotations(api):
    _, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    r = api.post("/api/predictions/", json={"task": task, "result": choice() + choice("Maybe")})
    assert r.status_code == 400 and list(r.json()["validation_errors"]) == ["result[1].value.choices"]
    good = api.post("/api/predictions/", json={"task": task, "result": choice()}).json()
    r = api.patch(f"/api/predictions/{good['id']}/", json={"result": [{"from_name": "x"}]})
    assert r.status_code == 400 and "result[0].from_name" in r.json()["validation_errors"]
    r = api.post("/api/predictions/", json={"task": 999, "result": []})
    assert r.status_code == 404
    r = api.post("/api/predictions/", json={"result": []})
    assert r.status_code == 400 and "task" in r.json()["validation_errors"]


def test_newest_prediction_score_drives_the_task(api, live_server):
    _, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    api.post("/api/predictions/", json={"task": task, "result": choice(), "score": 0.3})
    api.post("/api/predictions/", json={"task": task, "result": choice(), "score": 0.8})
    with live_server.session_factory() as session:
        assert session.get(Task, task).prediction_score == 0.8


def test_roles(api, live_server):
    project, (task,) = project_with_tasks(api, TEXT_CONFIG, 1)
    created = api.post("/api/predictions/", json={"task": task, "result": choice(), "score": 0.5}).json()
    other, _ = project_with_tasks(api, TEXT_CONFIG, 0)
    with (
        member(api, live_server, project["id"], "annotator", "ann") as ann,
        member(api, live_server, other["id"], "manager", "outsider") as outsider,
    ):
        assert [p["id"] for p in ann.get("/api/predictions/", params={"task": task}).json()] == [created["id"]]
        r = ann.post("/api/predictions/", json={"task": task, "result": choice()})
        assert r.status_code == 403 and "manager role" in r.json()["detail"]
        assert ann.delete(f"/api/predictions/{created['id']}/").status_code == 403
        assert outsider.get("/api/predictions/").json() == []  # only projects one is a member of
        assert outsider.get(f"/api/predictions/{created['id']}/").status_code == 403
