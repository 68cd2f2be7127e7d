"""Webhooks end to end: a real receiver verifies signatures; failures are retried; history is visible."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, TEXT_CONFIG, reset
from tests.support.apiserver import LiveServer
from tests.support.labeling import choice, member, project_with_tasks
from tests.support.webhook_receiver import WebhookReceiver

SECRET = "s3cret-signing-key-0123456789"


def wait_delivery(client: httpx.Client, hook_id: int, status: str, timeout: float = 30.0) -> dict[str, Any]:
    """The newest delivery of the webhook once it reached `status`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        r = client.get(f"/api/webhooks/{hook_id}/deliveries/", params={"include_payload": True})
        assert r.status_code == 200, r.text
        last = r.json()["results"]
        if last and last[0]["status"] == status:
            return last[0]
        time.sleep(0.05)
    raise AssertionError(f"no delivery reached {status!r}: {last}")


def make_hook(client: httpx.Client, project_id: int | None, url: str, **fields: Any) -> dict[str, Any]:
    r = client.post("/api/webhooks/", json={"url": url, "project": project_id, **fields})
    assert r.status_code == 201, r.text
    return r.json()


# --- the model -----------------------------------------------------------------------------


def test_crud_and_the_secret_is_write_only(api, text_project):
    pid = text_project["id"]
    hook = make_hook(api, pid, "https://hooks.example.com/ls", actions=["TASKS_CREATED"], send_for_all_actions=False)
    assert hook["secret"]  # generated, shown once
    assert hook["has_secret"] is True and hook["project"] == pid and hook["actions"] == ["TASKS_CREATED"]

    given = make_hook(api, pid, "http://127.0.0.1:9/x", secret=SECRET, headers={"Authorization": "Bearer abc"})
    assert given["secret"] is None  # never echoed
    for body in (api.get(f"/api/webhooks/{given['id']}/").json(), *api.get("/api/webhooks/").json()):
        assert "secret" not in body and SECRET not in str(body)

    listed = api.get("/api/webhooks/", params={"project": pid}).json()
    assert [h["id"] for h in listed] == [hook["id"], given["id"]]

    r = api.patch(f"/api/webhooks/{hook['id']}/", json={"is_active": False, "actions": ["ANNOTATION_CREATED"]})
    assert r.status_code == 200 and r.json()["is_active"] is False and r.json()["actions"] == ["ANNOTATION_CREATED"]
    r = api.patch(f"/api/webhooks/{hook['id']}/", json={"secret": "another-secret-0123456789"})
    assert r.status_code == 200 and "secret" not in r.json()
    assert api.delete(f"/api/webhooks/{hook['id']}/").status_code == 204
    assert api.get(f"/api/webhooks/{hook['id']}/").status_code == 404


BAD_URLS = {
    "ftp://example.com/hook": "scheme must be http or https",
    "file:///etc/passwd": "scheme must be http or https",
    "https://user:pass@example.com/hook": "credentials in the URL",
    "https://token@example.com/hook": "credentials in the URL",
    "http:///no-host": "a host is required",
    "example.com/hook": "scheme must be http or https",
}


def test_url_is_checked_when_saved(api, text_project):
    hook = make_hook(api, text_project["id"], "https://ok.example.com/")
    for url, expected in BAD_URLS.items():
        r = api.post("/api/webhooks/", json={"url": url, "project": text_project["id"]})
        assert r.status_code == 400, (url, r.text)
        assert "url" in r.json()["validation_errors"] and expected in r.json()["detail"], url
        r = api.patch(f"/api/webhooks/{hook['id']}/", json={"url": url})
        assert r.status_code == 400 and "url" in r.json()["validation_errors"], url
    assert [h["url"] for h in api.get("/api/webhooks/").json()] == ["https://ok.example.com/"]


def test_other_invalid_fields_are_named(api, text_project):
    pid = text_project["id"]
    r = api.post("/api/webhooks/", json={"url": "https://x.example.com", "project": pid, "actions": ["NOPE"]})
    assert r.status_code == 400 and "actions" in r.json()["validation_errors"]
    r = api.post("/api/webhooks/", json={"url": "https://x.example.com", "project": pid, "headers": {"Host": "a"}})
    assert r.status_code == 400 and "headers" in r.json()["validation_errors"]
    r = api.post("/api/webhooks/", json={"url": "https://x.example.com", "project": pid, "secret": "short"})
    assert r.status_code == 400 and "secret" in r.json()["validation_errors"]
    r = api.post("/api/webhooks/", json={"url": "https://x.example.com", "project": 999})
    assert r.status_code == 404


def test_info_lists_label_studio_events(api):
    info = api.get("/api/webhooks/info/").json()
    for action in ("PROJECT_UPDATED", "TASKS_CREATED", "TASKS_DELETED", "ANNOTATION_CREATED", "ANNOTATIONS_DELETED"):
        assert set(info[action]) == {"name", "description", "key", "organization-only"}
    assert info["PROJECT_CREATED"]["organization-only"] is True
    assert info["TASKS_CREATED"]["key"] == "tasks"
    assert info["TASK_COMPLETED"]["key"] == "task"  # kubelabel's own (Label Studio has no such event)
    only = api.get("/api/webhooks/info/", params={"organization-only": "true"}).json()
    assert set(only) == {"PROJECT_CREATED", "PROJECT_DELETED"}


# --- deliveries ----------------------------------------------------------------------------


def test_signed_delivery_to_a_real_receiver(api, text_project):
    pid = text_project["id"]
    with WebhookReceiver(secret=SECRET) as receiver:
        hook = make_hook(api, pid, receiver.url, secret=SECRET, headers={"X-Team": "labeling"})
        assert api.patch(f"/api/projects/{pid}/", json={"title": "Renamed"}).status_code == 200
        (got,) = receiver.wait_for(1)
    assert got.signature_ok is True
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-kubelabel-event"] == "PROJECT_UPDATED"
    assert got.headers["x-team"] == "labeling"
    body = got.json()
    assert body["action"] == "PROJECT_UPDATED"
    assert body["project"]["id"] == pid and body["project"]["title"] == "Renamed"
    assert "<Choices" in body["project"]["label_config"]
    # The delivery id and timestamp are in the signed body and repeated in headers.
    assert str(body["delivery"]["id"]) == got.headers["x-kubelabel-delivery"]
    assert str(body["delivery"]["timestamp"]) == got.headers["x-kubelabel-timestamp"]

    delivery = wait_delivery(api, hook["id"], "delivered")
    assert delivery["attempts"] == 1 and delivery["last_status_code"] == 200 and delivery["last_error"] is None
    assert delivery["action"] == "PROJECT_UPDATED" and delivery["delivered_at"]
    assert delivery["payload"]["project"]["title"] == "Renamed"
    assert api.get(f"/api/webhooks/{hook['id']}/").json()["consecutive_failures"] == 0
    metrics = api.get("/metrics").text
    assert 'kubelabel_webhook_deliveries_total{outcome="delivered"}' in metrics
    assert 'kubelabel_queue_depth{queue="webhook.deliver"}' in metrics


def test_a_wrong_secret_fails_verification(api, text_project):
    with WebhookReceiver(secret=SECRET) as receiver:
        make_hook(api, text_project["id"], receiver.url, secret="not-the-receivers-secret-0000")
        api.patch(f"/api/projects/{text_project['id']}/", json={"title": "x"})
        (got,) = receiver.wait_for(1)
    assert got.signature_ok is False


def test_actions_filter_and_send_payload(api, text_project):
    pid = text_project["id"]
    with WebhookReceiver(secret=SECRET) as receiver:
        make_hook(api, pid, receiver.url, secret=SECRET, send_for_all_actions=False, actions=["TASKS_CREATED"])
        quiet = make_hook(api, pid, receiver.url, secret=SECRET, send_payload=False)
        api.patch(f"/api/projects/{pid}/", json={"title": "only the second hears this"})
        (first,) = receiver.wait_for(1)
        assert first.json() == {"action": "PROJECT_UPDATED", "delivery": first.json()["delivery"]}
        r = api.post(f"/api/projects/{pid}/import", json=[{"text": "a"}, {"text": "b"}])
        assert r.status_code == 201, r.text
        received = receiver.wait_for(3)
    tasks_events = [r.json() for r in received[1:] if "tasks" in r.json()]
    assert len(tasks_events) == 1, [r.json() for r in received]
    event = tasks_events[0]
    assert event["action"] == "TASKS_CREATED"
    assert sorted(t["data"]["text"] for t in event["tasks"]) == ["a", "b"]
    assert event["project"]["id"] == pid
    assert all(r.signature_ok for r in received)
    assert wait_delivery(api, quiet["id"], "delivered")["payload"] == {"action": "TASKS_CREATED"}


def test_inactive_and_other_projects_hooks_hear_nothing(api, text_project):
    other = api.post("/api/projects/", json={"title": "other"}).json()
    with WebhookReceiver() as receiver:
        off = make_hook(api, text_project["id"], receiver.url, is_active=False)
        make_hook(api, other["id"], receiver.url)
        org = make_hook(api, None, receiver.url)  # organisation-wide: hears every project
        api.patch(f"/api/projects/{text_project['id']}/", json={"title": "t"})
        (got,) = receiver.wait_for(1)
        assert got.json()["project"]["id"] == text_project["id"]
    assert wait_delivery(api, org["id"], "delivered")["action"] == "PROJECT_UPDATED"
    assert api.get(f"/api/webhooks/{off['id']}/deliveries/").json()["count"] == 0


# --- retries (a server with fast backoff) -----------------------------------------------------


@pytest.fixture(params=BACKENDS)
def fast_server(request: pytest.FixtureRequest, server_pool) -> LiveServer:
    """A server whose job backoff is milliseconds and gives up after 3 webhook attempts."""
    key = f"fast-{request.param}"
    if key not in server_pool.shared:
        server_pool.shared[key] = server_pool.new(
            request.param,
            KUBELABEL_JOB_BACKOFF_BASE=0.05,
            KUBELABEL_JOB_BACKOFF_MAX=0.2,
            KUBELABEL_WEBHOOK_MAX_ATTEMPTS=3,
            KUBELABEL_JOB_POLL_INTERVAL=0.1,
        )
    server = server_pool.shared[key]
    reset(server)
    return server


def test_failing_receiver_is_retried_until_delivered(fast_server):
    with fast_server.client() as api:
        pid = api.post("/api/projects/", json={"title": "retry"}).json()["id"]
        with WebhookReceiver(secret=SECRET, fail_first=2) as receiver:
            hook = make_hook(api, pid, receiver.url, secret=SECRET)
            api.patch(f"/api/projects/{pid}/", json={"title": "retry me"})
            received = receiver.wait_for(3)
            delivery = wait_delivery(api, hook["id"], "delivered")
        assert [r.status for r in received] == [500, 500, 200]
        assert all(r.signature_ok for r in received)
        # The same delivery each time, re-signed with a fresh timestamp.
        assert len({r.headers["x-kubelabel-delivery"] for r in received}) == 1
        assert delivery["attempts"] == 3 and delivery["last_status_code"] == 200
        assert api.get(f"/api/webhooks/{hook['id']}/").json()["consecutive_failures"] == 0
        assert 'kubelabel_webhook_deliveries_total{outcome="retry"}' in api.get("/metrics").text


def test_delivery_gives_up_and_counts_failures(fast_server):
    with fast_server.client() as api:
        pid = api.post("/api/projects/", json={"title": "down"}).json()["id"]
        with WebhookReceiver(fail_first=100, fail_status=503) as receiver:
            hook = make_hook(api, pid, receiver.url)
            api.patch(f"/api/projects/{pid}/", json={"title": "nobody home"})
            delivery = wait_delivery(api, hook["id"], "failed")
        assert len(receiver.received) == 3
        assert delivery["attempts"] == 3 and delivery["last_status_code"] == 503
        assert delivery["last_error"].startswith("HTTP 503")
        assert api.get(f"/api/webhooks/{hook['id']}/").json()["consecutive_failures"] == 3


def test_unreachable_receiver_is_recorded(fast_server):
    from tests.support.net import free_port

    with fast_server.client() as api:
        pid = api.post("/api/projects/", json={"title": "gone"}).json()["id"]
        hook = make_hook(api, pid, f"http://127.0.0.1:{free_port()}/nothing-listens")
        api.patch(f"/api/projects/{pid}/", json={"title": "x"})
        delivery = wait_delivery(api, hook["id"], "failed")
    assert delivery["last_status_code"] is None and "Connection refused" in delivery["last_error"]


def test_label_studio_payload_shapes(api, text_project):
    pid = text_project["id"]
    choice = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]
    with WebhookReceiver(secret=SECRET) as receiver:
        make_hook(api, pid, receiver.url, secret=SECRET)
        assert api.post(f"/api/projects/{pid}/import", json=[{"text": "hello"}]).status_code == 201
        (task,) = api.get(f"/api/projects/{pid}/tasks/").json()
        r = api.post(f"/api/tasks/{task['id']}/annotations/", json={"result": choice})
        assert r.status_code == 201, r.text
        annotation = r.json()
        assert api.patch(f"/api/annotations/{annotation['id']}/", json={"result": []}).status_code == 200
        assert api.delete(f"/api/annotations/{annotation['id']}/").status_code == 204
        assert api.delete(f"/api/tasks/{task['id']}/").status_code == 204
        received = receiver.wait_for(6)
    assert all(r.signature_ok for r in received)
    by_action = {r.json()["action"]: r.json() for r in received}
    assert set(by_action) == {
        "TASKS_CREATED",
        "ANNOTATION_CREATED",
        "TASK_COMPLETED",  # the annotation gave the task its overlap of 1
        "ANNOTATION_UPDATED",
        "ANNOTATIONS_DELETED",
        "TASKS_DELETED",
    }
    for body in by_action.values():
        assert body["project"]["id"] == pid
    assert by_action["TASKS_CREATED"]["tasks"][0]["data"] == {"text": "hello"}
    created = by_action["ANNOTATION_CREATED"]
    assert created["annotation"]["id"] == annotation["id"] and created["annotation"]["result"] == choice
    assert created["task"]["id"] == task["id"] and created["task"]["data"] == {"text": "hello"}
    completed = by_action["TASK_COMPLETED"]
    assert set(completed) == {"action", "task", "project", "delivery"}
    assert completed["task"]["id"] == task["id"] and completed["task"]["is_labeled"] is True
    assert by_action["ANNOTATION_UPDATED"]["annotation"]["result"] == []
    assert by_action["ANNOTATIONS_DELETED"]["annotations"] == [{"id": annotation["id"]}]
    assert by_action["TASKS_DELETED"]["tasks"] == [{"id": task["id"]}]


def test_task_completed_is_published_once_per_completion(api, live_server):
    """A task is completed when it gets its overlap (again after rejected work is redone), not when accepted."""
    project, (task, other) = project_with_tasks(api, TEXT_CONFIG, 2, overlap=2)
    pid = project["id"]
    with (
        WebhookReceiver(secret=SECRET) as receiver,
        member(api, live_server, pid, "annotator", "a") as a,
        member(api, live_server, pid, "annotator", "b") as b,
        member(api, live_server, pid, "annotator", "c") as c,
        member(api, live_server, pid, "reviewer", "rev") as rev,
    ):
        hook = make_hook(api, pid, receiver.url, secret=SECRET, send_for_all_actions=False, actions=["TASK_COMPLETED"])

        def submit(client: httpx.Client, task_id: int) -> int:
            r = client.post(f"/api/tasks/{task_id}/annotations/", json={"result": choice()})
            assert r.status_code == 201, r.text
            return r.json()["id"]

        def deliveries() -> list[dict[str, Any]]:
            return api.get(f"/api/webhooks/{hook['id']}/deliveries/", params={"include_payload": True}).json()[
                "results"
            ]

        first = submit(a, task)
        submit(a, other)  # one of two: not completed
        assert deliveries() == []
        second = submit(b, task)
        (got,) = receiver.wait_for(1)
        assert got.signature_ok is True and got.headers["x-kubelabel-event"] == "TASK_COMPLETED"
        body = got.json()
        assert body["action"] == "TASK_COMPLETED" and body["project"]["id"] == pid
        assert body["task"]["id"] == task and body["task"]["total_annotations"] == 2 and body["task"]["is_labeled"]

        # Accepting work on a completed task completes nothing new; a rejection sends it back,
        # and the redo completes it again.
        r = rev.post(f"/api/annotations/{first}/review", json={"accepted": True})
        assert r.status_code == 201 and r.json()["task_state"] == "completed"
        r = rev.post(f"/api/annotations/{second}/review", json={"accepted": False, "comment": "redo"})
        assert r.status_code == 201 and r.json()["task_state"] == "rejected"
        assert len(deliveries()) == 1
        assert c.get(f"/api/projects/{pid}/next").json()["id"] == task
        submit(c, task)
        received = receiver.wait_for(2)
    assert [r.json()["task"]["id"] for r in received] == [task, task]
    assert [d["action"] for d in deliveries()] == ["TASK_COMPLETED", "TASK_COMPLETED"]
    history = [(h["from_state"], h["to_state"]) for h in api.get(f"/api/tasks/{task}/history").json()]
    assert history == [
        ("new", "in_progress"),
        ("in_progress", "completed"),  # published
        ("completed", "rejected"),
        ("rejected", "in_progress"),  # handed to c by /next
        ("in_progress", "completed"),  # published again
    ]


def test_redeliver_and_metadata_addresses_are_refused(api, text_project):
    pid = text_project["id"]
    with WebhookReceiver(secret=SECRET) as receiver:
        hook = make_hook(api, pid, receiver.url, secret=SECRET)
        api.patch(f"/api/projects/{pid}/", json={"title": "once"})
        first = wait_delivery(api, hook["id"], "delivered")
        r = api.post(f"/api/webhooks/{hook['id']}/deliveries/{first['id']}/redeliver/")
        assert r.status_code == 201, r.text
        assert r.json()["id"] != first["id"] and r.json()["status"] == "pending"
        a, b = receiver.wait_for(2)
    assert b.signature_ok and b.json()["project"]["title"] == a.json()["project"]["title"] == "once"
    assert b.json()["delivery"]["id"] == r.json()["id"]
    assert api.post(f"/api/webhooks/{hook['id']}/deliveries/999/redeliver/").status_code == 404

    r = api.post("/api/webhooks/", json={"url": "http://169.254.169.254/latest/meta-data/", "project": pid})
    assert r.status_code == 400 and "link-local" in r.json()["validation_errors"]["url"][0]


def test_old_delivery_history_is_purged(api, live_server, text_project):
    from datetime import timedelta

    from sqlalchemy import update

    from api_server.db.base import utcnow
    from api_server.db.models import WebhookDelivery

    pid = text_project["id"]
    with WebhookReceiver() as receiver:
        hook = make_hook(api, pid, receiver.url)
        api.patch(f"/api/projects/{pid}/", json={"title": "old"})
        old = wait_delivery(api, hook["id"], "delivered")
        api.patch(f"/api/projects/{pid}/", json={"title": "new"})
        receiver.wait_for(2)
    with live_server.session_factory() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == old["id"])
            .values(created_at=utcnow() - timedelta(days=31))
        )
        session.commit()
    live_server.app.state.job_runner.upkeep()
    remaining = api.get(f"/api/webhooks/{hook['id']}/deliveries/").json()["results"]
    assert [d["id"] for d in remaining] != [] and old["id"] not in [d["id"] for d in remaining]


def test_bulk_annotations_from_an_import(api, text_project):
    pid = text_project["id"]
    choice = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Negative"]}}]
    with WebhookReceiver() as receiver:
        make_hook(api, pid, receiver.url, send_for_all_actions=False, actions=["ANNOTATIONS_CREATED"])
        tasks = [{"data": {"text": f"t{i}"}, "annotations": [{"result": choice}]} for i in range(3)]
        assert api.post(f"/api/projects/{pid}/import", json=tasks).status_code == 201
        (got,) = receiver.wait_for(1)
    body = got.json()
    assert body["action"] == "ANNOTATIONS_CREATED"
    # Label Studio's shape for the bulk event: lists under the singular keys.
    assert [a["result"] for a in body["annotation"]] == [choice] * 3
    assert sorted(t["data"]["text"] for t in body["task"]) == ["t0", "t1", "t2"]
    assert {a["task"] for a in body["annotation"]} == {t["id"] for t in body["task"]}
