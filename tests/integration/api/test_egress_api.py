"""Every outbound call of the API refuses what the outbound-address policy refuses (SQLite and PostgreSQL).

The suite's environment allows loopback for every kind and private ranges for all but URL import
(tests/support/apiserver.py); the forms below are refused all the same. Refused addresses are
never connected to: the only traffic is to servers of this test on 127.0.0.1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import update

from api_server.db.models import ImportStorage, Webhook
from tests.support.apiserver import LiveServer
from tests.support.webhook_receiver import WebhookReceiver

# Refused for every kind, whatever KUBELABEL_EGRESS_ALLOW says.
METADATA_FORMS = [
    "http://169.254.169.254",
    "http://2852039166",  # 169.254.169.254 in decimal
    "http://0xA9FEA9FE",  # hex
    "http://0251.0376.0251.0376",  # octal
    "http://[::ffff:169.254.169.254]",  # IPv4-mapped
    "http://[64:ff9b::a9fe:a9fe]",  # NAT64
    "http://[2002:a9fe:a9fe::1]",  # 6to4
    "http://[::ffff:127.0.0.1]",  # IPv4-mapped loopback (it does connect, where nothing checks)
]


class _Files:
    """A file server on 127.0.0.1; `routes` maps a path to (status, headers, body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.hits.append(self.path)
                status, headers, body = outer.routes.get(self.path, (404, {}, b""))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def files() -> Iterator[_Files]:
    server = _Files()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _named(r: httpx.Response, field: str, reason: str) -> None:
    assert r.status_code == 400, r.text
    messages = r.json().get("validation_errors", {}).get(field)
    assert messages and reason in messages[0], r.text


# --- URL import -------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", [*METADATA_FORMS, "http://10.0.0.1"])  # private: never for URL import
def test_url_import_refuses_the_address(api: httpx.Client, text_project: dict[str, Any], base: str) -> None:
    r = api.post(f"/api/projects/{text_project['id']}/import", data={"url": f"{base}/tasks.json"})
    _named(r, "url", "not allowed for import targets")
    assert api.get(f"/api/projects/{text_project['id']}/tasks/").json() == []


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/tasks.json", "http://[::ffff:127.0.0.1]:{port}/s.json"]
)
def test_url_import_checks_each_redirect(api: httpx.Client, text_project: dict[str, Any], files: _Files, target: str):
    """Fails on the old code: it followed redirects unchecked (and imported the mapped-loopback file)."""
    files.routes["/s.json"] = (200, {}, orjson.dumps([{"text": "internal"}]))
    files.routes["/tasks.json"] = (302, {"Location": target.format(port=files.port)}, b"")
    r = api.post(
        f"/api/projects/{text_project['id']}/import", data={"url": f"http://127.0.0.1:{files.port}/tasks.json"}
    )
    _named(r, "url", "not allowed for import targets")
    assert files.hits == ["/tasks.json"]
    files.routes["/tasks.json"] = (302, {"Location": "/s.json"}, b"")  # an allowed hop is followed
    r = api.post(
        f"/api/projects/{text_project['id']}/import", data={"url": f"http://127.0.0.1:{files.port}/tasks.json"}
    )
    assert r.status_code == 201 and r.json()["task_count"] == 1, r.text


# --- webhooks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", METADATA_FORMS)
def test_webhook_url_is_refused_when_saved(api: httpx.Client, text_project: dict[str, Any], base: str) -> None:
    pid = text_project["id"]
    r = api.post("/api/webhooks/", json={"url": f"{base}/hook", "project": pid})
    _named(r, "url", "not allowed for webhook targets")
    hook = api.post("/api/webhooks/", json={"url": "https://hooks.example.com/", "project": pid}).json()
    _named(api.patch(f"/api/webhooks/{hook['id']}/", json={"url": f"{base}/hook"}), "url", "not allowed")
    assert [h["url"] for h in api.get("/api/webhooks/").json()] == ["https://hooks.example.com/"]


def test_webhook_delivery_refuses_a_url_saved_before(
    api: httpx.Client, live_server: LiveServer, text_project: dict[str, Any]
) -> None:
    """A hook saved before the policy (here: written to the database) fails at delivery, once.

    Fails on the old code: the mapped form of loopback passed its check and was delivered to."""
    with WebhookReceiver() as receiver:
        hook = api.post("/api/webhooks/", json={"url": receiver.url, "project": text_project["id"]}).json()
        mapped = receiver.url.replace("127.0.0.1", "[::ffff:127.0.0.1]")
        with live_server.session_factory() as session:
            session.execute(update(Webhook).where(Webhook.id == hook["id"]).values(url=mapped))
            session.commit()
        api.patch(f"/api/projects/{text_project['id']}/", json={"title": "changed"})
        delivery = _wait(
            api, f"/api/webhooks/{hook['id']}/deliveries/", lambda d: d["results"][0]["status"] != "pending"
        )
        assert receiver.received == []
    first = delivery["results"][0]
    assert first["status"] == "failed" and first["attempts"] == 1, first
    assert "IPv6 form of 127.0.0.1" in first["last_error"]


# --- storages ---------------------------------------------------------------------------------------

BAD_ENDPOINTS = [
    ("file:///etc/passwd", "only http and https"),
    ("gopher://127.0.0.1:6379/_INFO", "only http and https"),
    ("http://169.254.169.254", "link-local"),
    ("http://[::ffff:169.254.169.254]:9000", "IPv6 form of 169.254.169.254"),
    ("http://0xA9FEA9FE", "link-local"),
]


@pytest.mark.parametrize(("endpoint", "reason"), BAD_ENDPOINTS)
def test_storage_endpoint_is_refused_when_saved_and_validated(
    api: httpx.Client, text_project: dict[str, Any], endpoint: str, reason: str
) -> None:
    """Fails on the old code: these were saved, and validate answered 500 for file://."""
    pid = text_project["id"]
    s3 = {"project": pid, "bucket": "b", "s3_endpoint": endpoint}
    _named(api.post("/api/storages/s3/", json=s3), "s3_endpoint", reason)
    _named(api.post("/api/storages/export/s3", json=s3), "s3_endpoint", reason)
    _named(api.post("/api/storages/s3/validate", json=s3), "s3_endpoint", reason)
    for kind in ("gcs", "azure"):
        other = {"project": pid, "bucket": "b", "endpoint": endpoint}
        _named(api.post(f"/api/storages/{kind}/", json=other), "endpoint", reason)
        _named(api.post(f"/api/storages/{kind}/validate", json=other), "endpoint", reason)
    row = api.post("/api/storages/s3/", json={"project": pid, "bucket": "b", "s3_endpoint": "http://s3.example.com"})
    assert row.status_code == 201, row.text
    _named(api.patch(f"/api/storages/s3/{row.json()['id']}", json={"s3_endpoint": endpoint}), "s3_endpoint", reason)
    _named(
        api.post("/api/storages/s3/validate", json={"id": row.json()["id"], "s3_endpoint": endpoint}),
        "s3_endpoint",
        reason,
    )
    assert api.get(f"/api/storages/s3/{row.json()['id']}").json()["s3_endpoint"] == "http://s3.example.com"


def test_storage_sync_refuses_an_endpoint_saved_before(
    api: httpx.Client, live_server: LiveServer, text_project: dict[str, Any]
) -> None:
    row = api.post("/api/storages/s3/", json={"project": text_project["id"], "bucket": "b"}).json()
    with live_server.session_factory() as session:
        stored = session.get(ImportStorage, row["id"])
        stored.settings = {**stored.settings, "s3_endpoint": "http://[64:ff9b::a9fe:a9fe]"}
        session.commit()
    assert api.post(f"/api/storages/s3/{row['id']}/sync").status_code == 200
    done = _wait(api, f"/api/storages/s3/{row['id']}", lambda s: s["status"] in {"failed", "completed"})
    assert done["status"] == "failed" and "IPv6 form of 169.254.169.254" in done["traceback"], done


def _wait(api: httpx.Client, path: str, ready: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        body = api.get(path).json()
        try:
            if ready(body):
                return body
        except (IndexError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never got ready: {body}")
        time.sleep(0.05)


def test_media_of_a_storage_whose_endpoint_is_refused_is_a_502(
    api: httpx.Client, live_server: LiveServer, text_project: dict[str, Any]
) -> None:
    from api_server.storages.presign import encode_fileuri

    pid = text_project["id"]
    row = api.post("/api/storages/s3/", json={"project": pid, "bucket": "b"}).json()
    with live_server.session_factory() as session:
        stored = session.get(ImportStorage, row["id"])
        stored.settings = {**stored.settings, "s3_endpoint": "http://2852039166"}
        session.commit()
    r = api.get(f"/api/projects/{pid}/presign/", params={"fileuri": encode_fileuri("s3://b/x.png")})
    assert r.status_code == 502 and "link-local" in r.json()["detail"], r.text
