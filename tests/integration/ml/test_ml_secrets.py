"""An ML backend's secrets (a password in its URL, basic_auth_pass) are used for calls and never shown."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from label_studio_sdk import LabelStudio
from sqlalchemy import select

from api_server.db.models import MLBackend
from tests.conftest import TEXT_CONFIG
from tests.support.apiserver import ADMIN_TOKEN

PASSWORD = "url-pass-Zq81x"
BASIC_PASS = "basic-pass-Pw55k"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _every_read(api: httpx.Client, backend_id: int, project_id: int) -> list[httpx.Response]:
    reads = [
        api.get(f"/api/ml/{backend_id}"),
        api.get("/api/ml/", params={"project": project_id}),
        api.get("/api/ml/"),
    ]
    assert all(r.status_code == 200 for r in reads), [r.text for r in reads]
    return reads


def test_url_credentials_are_used_and_never_returned(api, live_server, misbehaving_server):
    server = misbehaving_server
    server.on("/health", body={"status": "UP"})
    server.on("/setup", body={"model_version": "v1"})
    project = api.post("/api/projects/", json={"title": "ml", "label_config": TEXT_CONFIG}).json()
    url = f"http://mluser:{PASSWORD}@127.0.0.1:{server.port}"

    created = api.post("/api/ml/", json={"url": url, "project": project["id"], "title": "guarded"})
    assert created.status_code == 201, created.text
    shown = created.json()
    assert shown["url"] == f"http://mluser:********@127.0.0.1:{server.port}"
    assert shown["state"] == "CO", shown
    backend_id = shown["id"]
    assert server.headers[-1]["Authorization"] == _basic("mluser", PASSWORD)  # stored and used
    for r in [created, *_every_read(api, backend_id, project["id"])]:
        assert PASSWORD not in r.text

    sdk = LabelStudio(base_url=live_server.url, api_key=ADMIN_TOKEN)
    assert sdk.ml.get(id=backend_id).url == shown["url"]  # label-studio-sdk reads the masked shape

    # What a GET showed, sent back with a change, keeps the stored password.
    r = api.patch(f"/api/ml/{backend_id}", json={**{k: shown[k] for k in ("url", "title")}, "timeout": 9})
    assert r.status_code == 200 and PASSWORD not in r.text, r.text
    with live_server.session_factory() as session:
        assert session.scalars(select(MLBackend.url)).one() == url
    assert server.headers[-1]["Authorization"] == _basic("mluser", PASSWORD)

    # basic_auth_pass: write-only, shown as basic_auth_pass_is_set.
    body: dict[str, Any] = {"auth_method": "BASIC_AUTH", "basic_auth_user": "basic", "basic_auth_pass": BASIC_PASS}
    body["url"] = server.url
    r = api.patch(f"/api/ml/{backend_id}", json=body)
    assert r.status_code == 200 and r.json()["basic_auth_pass_is_set"] is True
    assert server.headers[-1]["Authorization"] == _basic("basic", BASIC_PASS)
    for read in [r, *_every_read(api, backend_id, project["id"])]:
        assert BASIC_PASS not in read.text and '"basic_auth_pass"' not in read.text


def test_a_backend_echoing_its_password_does_not_leak_it(api, misbehaving_server):
    server = misbehaving_server
    server.on("/health", status=401, body={"detail": f"wrong password {PASSWORD} for mluser"})
    project = api.post("/api/projects/", json={"title": "ml", "label_config": TEXT_CONFIG}).json()
    url = f"http://mluser:{PASSWORD}@127.0.0.1:{server.port}"
    created = api.post("/api/ml/", json={"url": url, "project": project["id"]})
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "ER" and created.json()["error_message"]
    for r in [created, *_every_read(api, created.json()["id"], project["id"])]:
        assert PASSWORD not in r.text
