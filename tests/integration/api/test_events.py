"""Domain events: subscribers run only for their actions, and only when their listeners query finds someone."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from api_server import events
from api_server.db.models import Project
from tests.conftest import TEXT_CONFIG

# "Someone listens" to projects whose title says so.
LISTENED = select(Project.id).where(Project.id == bindparam("project_id"), Project.title == "listened")


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
