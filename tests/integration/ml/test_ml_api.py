"""/api/ml against the real API server (SQLite and PostgreSQL) and real or misbehaving backends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api_server.db.base import utcnow
from api_server.db.models import Prediction
from api_server.db.session import session_scope
from api_server.ml import repository
from tests.support.apiserver import LiveServer
from tests.support.waiting import wait_until

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="topic" toName="text"><Choice value="A"/><Choice value="B"/></Choices></View>"""


def canned(label: str, score: float, n: int, version: str = "canned-1") -> dict[str, Any]:
    item = {"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [label]}}
    return {"results": [{"result": [item], "score": score, "model_version": version}] * n}


@pytest.fixture
def project(api: httpx.Client) -> dict[str, Any]:
    r = api.post("/api/projects/", json={"title": "Topics", "label_config": CONFIG})
    assert r.status_code == 201, r.text
    return r.json()


def import_tasks(api: httpx.Client, project_id: int, texts: list[str]) -> list[int]:
    r = api.post(
        f"/api/projects/{project_id}/import",
        params={"return_task_ids": "true"},
        json=[{"text": t} for t in texts],
    )
    assert r.status_code == 201, r.text
    return r.json()["task_ids"]


def predictions(live_server: LiveServer, project_id: int) -> list[Prediction]:
    with live_server.session_factory() as session:
        stmt = select(Prediction).where(Prediction.project_id == project_id).order_by(Prediction.task_id)
        return list(session.scalars(stmt))


def test_register_list_update_delete(api: httpx.Client, project: dict[str, Any], model_server: Any) -> None:
    body = {"url": model_server.url, "project": project["id"], "title": "ns/tfidf", "timeout": 7}
    r = api.post("/api/ml/", json=body)
    assert r.status_code == 201, r.text
    backend = r.json()
    assert backend["state"] == "CO" and backend["readable_state"] == "Connected"
    assert backend["model_version"] == "tfidf-logreg-v0"
    assert backend["timeout"] == 7 and backend["error_message"] is None

    again = api.post("/api/ml/", json={**body, "timeout": 9})  # idempotent by title
    assert again.status_code == 201 and again.json()["id"] == backend["id"]
    listed = api.get("/api/ml", params={"project": project["id"]}).json()
    assert [(b["id"], b["timeout"]) for b in listed] == [(backend["id"], 9)]

    r = api.patch(
        f"/api/ml/{backend['id']}",
        json={"auth_method": "BASIC_AUTH", "basic_auth_user": "u", "basic_auth_pass": "pw", "auto_update": False},
    )
    assert r.status_code == 200, r.text
    assert r.json()["basic_auth_pass_is_set"] is True and "basic_auth_pass" not in r.json()
    assert r.json()["auto_update"] is False

    assert api.delete(f"/api/ml/{backend['id']}").status_code == 204
    assert api.get(f"/api/ml/{backend['id']}").status_code == 404


def test_validation(api: httpx.Client, project: dict[str, Any]) -> None:
    assert api.post("/api/ml/", json={"url": "ftp://x", "project": project["id"]}).status_code == 400
    assert api.post("/api/ml/", json={"url": "http://x"}).status_code == 400
    assert api.post("/api/ml/", json={"url": "http://x", "project": 999}).status_code == 404
    r = api.post("/api/ml/", json={"url": "http://x", "project": project["id"], "auth_method": "BASIC_AUTH"})
    assert r.status_code == 400 and "basic_auth_user" in r.json()["detail"]


def test_unreachable_backend_is_registered_in_error(
    api: httpx.Client, project: dict[str, Any], unused_url: str
) -> None:
    r = api.post("/api/ml/", json={"url": unused_url, "project": project["id"], "title": "down"})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "ER"
    assert "unreachable" in r.json()["error_message"]
    metrics = api.get("/metrics").text
    assert 'kubelabel_ml_requests_total{endpoint="/health",outcome="unavailable"}' in metrics


def test_import_is_predicted_in_background(
    api: httpx.Client, live_server: LiveServer, project: dict[str, Any], misbehaving_server: Any
) -> None:
    misbehaving_server.on("/health", body={"status": "UP"})
    misbehaving_server.on("/setup", body={"model_version": "canned-1"})
    misbehaving_server.on("/predict", body=canned("A", 0.75, 3))
    r = api.post("/api/ml/", json={"url": misbehaving_server.url, "project": project["id"]})
    assert r.json()["state"] == "CO"
    ids = import_tasks(api, project["id"], ["one", "two", "three"])
    rows = wait_until(
        lambda: len(predictions(live_server, project["id"])) == 3 and predictions(live_server, project["id"])
    )
    assert [(p.task_id, p.score, p.model_version) for p in rows] == [(i, 0.75, "canned-1") for i in ids]
    sent = [b for b in misbehaving_server.bodies if b and "tasks" in b]
    assert [t["id"] for t in sent[0]["tasks"]] == ids
    assert sent[0]["label_config"] == CONFIG and sent[0]["project"].startswith(f"{project['id']}.")
    task = api.get(f"/api/tasks/{ids[0]}/").json()
    assert task["total_predictions"] == 1


def test_slow_backend_never_blocks_imports(
    api: httpx.Client, live_server: LiveServer, project: dict[str, Any], misbehaving_server: Any
) -> None:
    misbehaving_server.on("/health", body={"status": "UP"})
    misbehaving_server.on("/setup", body={"model_version": "slow-1"})
    r = api.post("/api/ml/", json={"url": misbehaving_server.url, "project": project["id"], "timeout": 1})
    backend_id = r.json()["id"]
    misbehaving_server.on("/predict", body=canned("A", 0.5, 2), delay_until_released=True)
    import_tasks(api, project["id"], ["x", "y"])
    # The import answered while the backend still holds the prediction request.
    wait_until(lambda: misbehaving_server.hits["/predict"] >= 1, what="the backend to be asked")
    assert predictions(live_server, project["id"]) == []
    backend = wait_until(
        lambda: (b := api.get("/api/ml", params={"project": project["id"]}).json()[0])["state"] == "ER" and b,
        what="the timeout to be recorded",
    )
    assert backend["id"] == backend_id
    assert "timed out after 1s" in backend["error_message"]
    assert 'kubelabel_ml_requests_total{endpoint="/predict",outcome="timeout"}' in api.get("/metrics").text


def test_predict_selected_tasks_replaces_by_model_version(
    api: httpx.Client, live_server: LiveServer, project: dict[str, Any], misbehaving_server: Any
) -> None:
    misbehaving_server.on("/health", body={"status": "UP"})
    misbehaving_server.on("/setup", body={"model_version": "v1"})
    r = api.post("/api/ml/", json={"url": misbehaving_server.url, "project": project["id"], "auto_update": False})
    backend_id = r.json()["id"]
    ids = import_tasks(api, project["id"], ["p", "q", "r"])
    assert misbehaving_server.hits["/predict"] == 0  # auto_update off: no prediction on import

    misbehaving_server.on("/predict", body=canned("A", 0.9, 2, "v1"))
    r = api.post(f"/api/ml/{backend_id}/predict", json={"task_ids": ids[:2]})
    assert r.status_code == 200, r.text
    assert r.json() == {"model_version": "v1", "predictions": 2, "tasks": 2, "detail": ""}

    misbehaving_server.on("/predict", body=canned("B", 0.4, 3, "v2"))
    r = api.post(f"/api/ml/{backend_id}/predict", json={"selectedItems": {"all": True}})
    assert r.json()["predictions"] == 3
    rows = predictions(live_server, project["id"])
    assert [(p.task_id, p.model_version, p.score) for p in rows] == [(i, "v2", 0.4) for i in ids]
    listed = api.get("/api/predictions/", params={"task": ids[0]}).json()
    assert [p["model_version"] for p in listed] == ["v2"]

    misbehaving_server.on("/predict", status=500, raw=b"boom")
    r = api.post(f"/api/ml/{backend_id}/predict", json={"task_ids": ids})
    assert r.status_code == 502 and "HTTP 500" in r.json()["detail"]
    (listed,) = api.get("/api/ml", params={"project": project["id"]}).json()
    assert listed["state"] == "ER" and "HTTP 500" in listed["error_message"]
    # Retrieving one backend re-checks /health and /setup (Label Studio does too): it recovers.
    assert api.get(f"/api/ml/{backend_id}").json()["state"] == "CO"
    assert len(predictions(live_server, project["id"])) == 3  # old predictions kept


def test_interactive_versions_and_test_predict(
    api: httpx.Client, project: dict[str, Any], misbehaving_server: Any
) -> None:
    misbehaving_server.on("/health", body={"status": "UP"})
    misbehaving_server.on("/setup", body={"model_version": "v7"})
    misbehaving_server.on("/predict", body=canned("B", 0.6, 1, "v7"))
    misbehaving_server.on("/versions", body={"versions": ["v6", "v7"]})
    backend_id = api.post(
        "/api/ml/", json={"url": misbehaving_server.url, "project": project["id"], "auto_update": False}
    ).json()["id"]
    (task_id,) = import_tasks(api, project["id"], ["z"])
    r = api.post(f"/api/ml/{backend_id}/interactive-annotating", json={"task": task_id, "context": {"x": 1}})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["result"][0]["value"] == {"choices": ["B"]}
    assert misbehaving_server.bodies[-1]["params"] == {"context": {"x": 1}}
    assert api.get(f"/api/ml/{backend_id}/versions").json() == {"versions": ["v6", "v7"], "message": ""}
    r = api.post(f"/api/ml/{backend_id}/predict/test")
    assert r.status_code == 200 and r.json()["prediction"]["model_version"] == "v7"
    assert api.post(f"/api/ml/{backend_id}/interactive-annotating", json={"task": 12345}).status_code == 404


def test_project_changes_reach_the_backend(api: httpx.Client, project: dict[str, Any], misbehaving_server: Any) -> None:
    misbehaving_server.on("/health", body={"status": "UP"})
    misbehaving_server.on("/setup", body={"model_version": "s1"})
    api.post("/api/ml/", json={"url": misbehaving_server.url, "project": project["id"]}).raise_for_status()
    new_config = CONFIG.replace('<Choice value="B"/>', '<Choice value="B"/><Choice value="C"/>')
    r = api.patch(f"/api/projects/{project['id']}/", json={"label_config": new_config})
    assert r.status_code == 200, r.text

    def schemas() -> list[str]:
        return [b["schema"] for b in misbehaving_server.bodies if b and "schema" in b]

    assert wait_until(lambda: new_config in schemas(), what="/setup with the new config")


def test_an_older_prediction_run_never_overwrites_a_newer_one(
    api: httpx.Client, live_server: LiveServer, project: dict[str, Any], misbehaving_server: Any
) -> None:
    misbehaving_server.on("/health", body={"status": "UP"})
    misbehaving_server.on("/setup", body={"model_version": "v1"})
    backend_id = api.post(
        "/api/ml/", json={"url": misbehaving_server.url, "project": project["id"], "auto_update": False}
    ).json()["id"]
    (task_id,) = import_tasks(api, project["id"], ["t"])
    item = [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": ["A"]}}]
    t0 = utcnow()

    def store(version: str, score: float, asked: Any) -> int:
        with session_scope(live_server.session_factory) as session:
            return repository.replace_predictions(
                session,
                project_id=project["id"],
                backend_id=backend_id,
                items=[(task_id, item, score, version)],
                requested_at=asked,
            )

    assert store("v2", 0.8, t0 + timedelta(seconds=2)) == 1
    assert store("v1", 0.3, t0 + timedelta(seconds=1)) == 0  # asked earlier, finished later: dropped
    assert [(p.model_version, p.score) for p in predictions(live_server, project["id"])] == [("v2", 0.8)]
    assert store("v3", 0.5, t0 + timedelta(seconds=3)) == 1
    assert [(p.model_version, p.score) for p in predictions(live_server, project["id"])] == [("v3", 0.5)]
    task = api.get(f"/api/tasks/{task_id}/").json()
    assert task["total_predictions"] == 1
