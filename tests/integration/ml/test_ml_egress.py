"""ML backends and the outbound-address policy, and what a failing backend's answer may show (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from api_server.db.models import MLBackend
from tests.integration.api.test_egress_api import METADATA_FORMS
from tests.support.apiserver import LiveServer

SECRET = b"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _task(api: httpx.Client, project_id: int) -> None:
    r = api.post(f"/api/projects/{project_id}/import", json=[{"text": "a"}])
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("base", METADATA_FORMS)
def test_backend_url_is_refused_when_saved(api: httpx.Client, text_project: dict[str, Any], base: str) -> None:
    pid = text_project["id"]
    r = api.post("/api/ml/", json={"url": base, "project": pid})
    assert r.status_code == 400 and "not allowed for ml targets" in r.json()["validation_errors"]["url"][0], r.text
    backend = api.post("/api/ml/", json={"url": "http://models.example.com", "project": pid}).json()
    r = api.patch(f"/api/ml/{backend['id']}", json={"url": base})
    assert r.status_code == 400 and "url" in r.json()["validation_errors"], r.text
    assert [b["url"] for b in api.get("/api/ml/", params={"project": pid}).json()] == ["http://models.example.com"]


def test_calls_refuse_a_url_saved_before(
    api: httpx.Client, live_server: LiveServer, text_project: dict[str, Any], misbehaving_server: Any
) -> None:
    """A backend saved before the policy (written to the database) is never called: every call says why."""
    pid = text_project["id"]
    _task(api, pid)
    misbehaving_server.on("/health", body={"status": "UP"})
    backend = api.post("/api/ml/", json={"url": misbehaving_server.url, "project": pid}).json()
    mapped = misbehaving_server.url.replace("127.0.0.1", "[::ffff:127.0.0.1]")
    with live_server.session_factory() as session:
        session.execute(update(MLBackend).where(MLBackend.id == backend["id"]).values(url=mapped))
        session.commit()
    hits = dict(misbehaving_server.hits)
    shown = api.get(f"/api/ml/{backend['id']}").json()
    assert shown["state"] == "ER" and "IPv6 form of 127.0.0.1" in shown["error_message"]
    for path, body in (("train", None), ("predict", {"task_ids": None}), ("predict/test", None)):
        r = api.post(f"/api/ml/{backend['id']}/{path}", json=body)
        assert r.status_code == 502 and "refused" in r.json()["detail"], (path, r.text)
    assert "refused" in api.get(f"/api/ml/{backend['id']}/versions").json()["message"]
    assert dict(misbehaving_server.hits) == hits


def test_errors_name_the_status_never_the_answer(
    api: httpx.Client, text_project: dict[str, Any], misbehaving_server: Any
) -> None:
    """Fails on the old code: the backend's answer was echoed into the error detail."""
    pid = text_project["id"]
    _task(api, pid)
    for path in ("/health", "/setup", "/predict", "/webhook", "/train", "/versions"):
        misbehaving_server.on(path, status=500, raw=SECRET)
    backend = api.post("/api/ml/", json={"url": misbehaving_server.url, "project": pid}).json()
    assert backend["state"] == "ER" and "HTTP 500" in backend["error_message"]
    answers = [
        api.post(f"/api/ml/{backend['id']}/predict", json={}),
        api.post(f"/api/ml/{backend['id']}/predict/test"),
        api.post(f"/api/ml/{backend['id']}/train"),
    ]
    for r in answers:
        assert r.status_code == 502 and "HTTP 500" in r.json()["detail"], r.text
    versions = api.get(f"/api/ml/{backend['id']}/versions")
    assert versions.status_code == 200 and "HTTP 500" in versions.json()["message"]
    misbehaving_server.on("/health", raw=b"<html>" + SECRET + b"</html>")  # not JSON: the kind of failure only
    shown = api.get(f"/api/ml/{backend['id']}").json()
    assert "invalid JSON" in shown["error_message"]
    everything = b"".join(r.content for r in [*answers, versions]) + str([backend, shown]).encode()
    assert b"wJalrXUtnFEMI" not in everything


def test_train_against_an_unreachable_backend_is_a_502(
    api: httpx.Client, text_project: dict[str, Any], unused_url: str
) -> None:
    """Fails on the old code: it answered 500."""
    backend = api.post("/api/ml/", json={"url": unused_url, "project": text_project["id"]}).json()
    r = api.post(f"/api/ml/{backend['id']}/train")
    assert r.status_code == 502 and "unreachable" in r.json()["detail"], r.text
