"""Webhooks from the operator's project file converge at start; API-made ones are left alone."""

from __future__ import annotations

import orjson

from api_server.bootstrap import upsert_provisioned_project
from tests.integration.api.test_webhooks import make_hook, wait_delivery
from tests.support.webhook_receiver import WebhookReceiver

FILE_SECRET = "from-a-kubernetes-secret-0123456789"


def provision(live_server, webhooks):
    with live_server.session_factory() as session:
        upsert_provisioned_project(session, {"title": "Provisioned", "webhooks": webhooks}, admin_id=1)
        session.commit()


def test_project_file_webhooks_converge(api, live_server, monkeypatch):
    monkeypatch.setenv("KUBELABEL_WEBHOOK_SECRET_0", FILE_SECRET)
    provision(
        live_server,
        [
            {
                "url": "https://a.example.com/hook",
                "actions": ["TASKS_CREATED"],
                "secret_env": "KUBELABEL_WEBHOOK_SECRET_0",
            },
            {"url": "https://b.example.com/hook", "actions": []},
            {"url": "ftp://bad.example.com"},  # refused, logged, skipped
        ],
    )
    manual = make_hook(api, 1, "https://manual.example.com/")
    hooks = {h["url"]: h for h in api.get("/api/webhooks/", params={"project": 1}).json()}
    a, b = hooks["https://a.example.com/hook"], hooks["https://b.example.com/hook"]
    assert a["provisioned"] and a["has_secret"] and a["actions"] == ["TASKS_CREATED"] and not a["send_for_all_actions"]
    assert b["provisioned"] and not b["has_secret"] and b["send_for_all_actions"]
    assert not hooks["https://manual.example.com/"]["provisioned"]

    # Restart with a changed file: a is updated in place, b is gone, the manual one stays.
    provision(live_server, [{"url": "https://a.example.com/hook", "actions": ["TASKS_CREATED", "TASKS_DELETED"]}])
    hooks = {h["url"]: h for h in api.get("/api/webhooks/", params={"project": 1}).json()}
    assert set(hooks) == {"https://a.example.com/hook", "https://manual.example.com/"}
    assert hooks["https://a.example.com/hook"]["id"] == a["id"]
    assert hooks["https://a.example.com/hook"]["actions"] == ["TASKS_CREATED", "TASKS_DELETED"]
    assert hooks["https://manual.example.com/"]["id"] == manual["id"]

    provision(live_server, [])
    assert [h["url"] for h in api.get("/api/webhooks/", params={"project": 1}).json()] == [manual["url"]]


def test_a_provisioned_webhook_signs_with_the_secret_from_the_environment(api, live_server, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", FILE_SECRET)
    with WebhookReceiver(secret=FILE_SECRET) as receiver:
        provision(live_server, [{"url": receiver.url, "actions": ["PROJECT_UPDATED"], "secret_env": "HOOK_SECRET"}])
        api.patch("/api/projects/1/", json={"title": "from the file"})
        (got,) = receiver.wait_for(1)
    assert got.signature_ok is True
    assert orjson.loads(got.body)["project"]["title"] == "from the file"
    (hook,) = api.get("/api/webhooks/", params={"project": 1}).json()
    wait_delivery(api, hook["id"], "delivered")
