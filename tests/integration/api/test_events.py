"""Domain events: written to the outbox with the change, fanned out after it commits, only to listening subscribers."""

from __future__ import annotations

import time

from sqlalchemy import bindparam, func, select

from api_server import events
from api_server.db.models import EventOutbox, Project, Webhook
from tests.conftest import TEXT_CONFIG

# "Someone listens" to projects whose title says so.
LISTENED = select(Project.id).where(Project.id == bindparam("project_id"), Project.title == "listened")


def _outbox(live_server) -> int:
    with live_server.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(EventOutbox)) or 0)


def test_publish_asks_listeners_and_actions(api, live_server):
    ids = {
        title: api.post("/api/projects/", json={"title": title, "label_config": TEXT_CONFIG}).json()["id"]
        for title in ("listened", "quiet")
    }
    heard: list[tuple[str, int, str]] = []

    def with_listeners(session, project_id, action, objects):
        heard.append(("with_listeners", project_id, action))

    def for_one_action(session, project_id, action, objects):
        heard.append(("for_one_action", project_id, action))

    events.subscribe(with_listeners, listeners=LISTENED)
    events.subscribe(for_one_action, actions={"TASKS_DELETED"})
    try:
        with live_server.session_factory() as session:
            for project_id in ids.values():
                for action in ("ANNOTATION_CREATED", "TASKS_DELETED"):
                    events.publish(session, project_id, action, task=1)
            session.rollback()  # rolled back: nothing to fan out
        assert _outbox(live_server) == 0
        with live_server.session_factory() as session:
            for project_id in ids.values():
                for action in ("ANNOTATION_CREATED", "TASKS_DELETED"):
                    events.publish(session, project_id, action, task=1)
            assert heard == []  # subscribers run after the commit, off the caller's path
            session.commit()
        # The rows leave the outbox after their subscribers ran: wait for both.
        deadline = time.monotonic() + 10
        while (len(heard) < 4 or _outbox(live_server)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _outbox(live_server) == 0
    finally:
        events.unsubscribe(with_listeners)
        events.unsubscribe(for_one_action)
    listened, quiet = ids["listened"], ids["quiet"]
    assert [h for h in heard if h[0] == "with_listeners"] == [
        ("with_listeners", listened, "ANNOTATION_CREATED"),
        ("with_listeners", listened, "TASKS_DELETED"),
    ]
    assert [h for h in heard if h[0] == "for_one_action"] == [
        ("for_one_action", listened, "TASKS_DELETED"),
        ("for_one_action", quiet, "TASKS_DELETED"),
    ]


def test_a_failing_subscriber_loses_only_its_event(api, live_server):
    """A batch whose subscriber raises is fanned out again one event at a time; only the failing event is dropped."""
    pid = api.post("/api/projects/", json={"title": "listened", "label_config": TEXT_CONFIG}).json()["id"]
    heard: list[int] = []

    def fragile(session, project_id, action, objects):
        if objects["n"] == 2:
            raise RuntimeError("this one breaks")
        heard.append(objects["n"])

    events.subscribe(fragile, actions={"PROJECT_UPDATED"}, listeners=LISTENED)
    try:
        with live_server.session_factory() as session:
            for n in range(1, 5):
                events.publish(session, pid, "PROJECT_UPDATED", n=n)
            session.commit()
        deadline = time.monotonic() + 10
        while (len(set(heard)) < 3 or _outbox(live_server)) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        events.unsubscribe(fragile)
    # The failed batch was rolled back (what subscribers wrote with it), then each event ran alone.
    assert set(heard) == {1, 3, 4} and _outbox(live_server) == 0


def test_an_action_no_webhook_takes_is_not_written(api, live_server):
    """A webhook's listeners query tells actions apart: what no subscriber takes never reaches the outbox."""
    pid = api.post("/api/projects/", json={"title": "hooked", "label_config": TEXT_CONFIG}).json()["id"]
    with live_server.session_factory() as session:
        hook = Webhook(
            project_id=pid, url="http://127.0.0.1:9/hook", send_for_all_actions=False, actions=["ANNOTATION_UPDATED"]
        )
        session.add(hook)
        session.commit()

        def written() -> list[str]:
            for action in ("ANNOTATION_CREATED", "TASK_COMPLETED", "ANNOTATION_UPDATED"):
                events.publish(session, pid, action, task=1)
            session.flush()  # SQLite's sessions do not flush on their own (its write lock)
            actions = list(session.scalars(select(EventOutbox.action).order_by(EventOutbox.id)))
            session.rollback()
            return actions

        assert written() == ["ANNOTATION_UPDATED"]
        session.get_one(Webhook, hook.id).actions = ["TASK_COMPLETED"]
        session.commit()
        assert written() == ["TASK_COMPLETED"]
        session.get_one(Webhook, hook.id).send_for_all_actions = True
        session.commit()
        assert written() == ["ANNOTATION_CREATED", "TASK_COMPLETED", "ANNOTATION_UPDATED"]
        session.get_one(Webhook, hook.id).is_active = False
        session.commit()
        assert written() == []
