"""SQLite's fan-out writes a batch of submissions' deliveries in one statement (webhooks/bulk.py).

Submissions go through the services, as every submission on SQLite does: each writes its
ANNOTATION_CREATED event with the annotation in the API's form and the task as its row's values.
The same outbox batch is then fanned out twice, each in a transaction rolled back afterwards: once
per event in Python, once by SQLite's JSON functions. Both must write the same deliveries, payloads
value for value, in the same order; a batch with an event the statement does not build, or a task
whose timestamps are not written as payloads write them, goes the Python way whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from api_server import wiring
from api_server.annotations import service as annotations
from api_server.annotations.schemas import AnnotationCreate
from api_server.db import migrate
from api_server.db.base import utcnow
from api_server.db.models import EventOutbox, User
from api_server.db.session import make_engine, make_session_factory
from api_server.webhooks import bulk
from tests.integration.api.test_webhook_bulk import RESULT, _fan_out, _written, project_with_hooks


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    url = f"sqlite:///{tmp_path / 'bulk.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    wiring.wire()
    yield engine, make_session_factory(engine)
    engine.dispose()


def _labeled(factory: sessionmaker[Session], org_wide_all: bool) -> None:
    ids, user_id, _ = project_with_hooks(factory, org_wide_all)
    # Lead times of each JSON kind, a draft's time (with and without microseconds), a skip.
    draft = utcnow().replace(microsecond=0) - timedelta(seconds=7)
    variants: list[dict[str, Any]] = [
        {"lead_time": 3.0},
        {"lead_time": 2.5, "draft_created_at": draft},
        {"lead_time": 0.001, "ground_truth": True, "draft_created_at": draft + timedelta(microseconds=5)},
        {"was_cancelled": True, "result": []},
        {},
    ]
    for task_id, values in zip(ids, variants, strict=True):
        with factory() as session:
            user = session.get_one(User, user_id)
            annotations.create(session, user, task_id, AnnotationCreate(**({"result": RESULT} | values)))


def test_the_statement_writes_what_the_per_event_fan_out_writes(database, monkeypatch):
    _, factory = database
    _labeled(factory, org_wide_all=False)
    per_event, decoded = _fan_out(factory, monkeypatch, bulk=False)
    assert decoded is True
    sql_before = _written("sql")
    by_statement, decoded = _fan_out(factory, monkeypatch, bulk=True)
    assert _written("sql") - sql_before == len(by_statement)  # the statement wrote them
    assert decoded is False  # nothing read or decoded in Python

    assert len(per_event) == 5 * 2  # each annotation to both webhooks (TASK_COMPLETED is heard by none)
    assert by_statement == per_event
    full = [d[-1] for d in per_event if len(d[-1]) > 1]
    assert {d[-1]["action"] for d in per_event} == {"ANNOTATION_CREATED"} and len(full) == 5
    first = full[0]
    assert set(first) == {"action", "annotation", "task", "project"}
    assert first["annotation"]["created_username"] == "annotator" and first["annotation"]["lead_time"] == 3.0
    assert first["annotation"]["created_at"].endswith("Z")
    assert first["task"]["created_at"].endswith("+00:00") and first["task"]["meta"] == {"i": 0}
    assert first["task"]["is_labeled"] is True and first["task"]["data"] == {"text": "t0"}
    assert full[2]["annotation"]["ground_truth"] is True and full[3]["annotation"]["was_cancelled"] is True
    assert first["project"]["title"] == "bulk" and first["project"]["task_number"] == 5
    assert [d[2] for d in by_statement] == [d[-1]["task"]["id"] for d in by_statement if len(d[-1]) > 1 for _ in (0, 1)]


def test_a_batch_with_an_event_the_statement_does_not_build_goes_per_event(database, monkeypatch):
    _, factory = database
    _labeled(factory, org_wide_all=True)
    per_event, _ = _fan_out(factory, monkeypatch, bulk=False)
    sql_before, python_before = _written("sql"), _written("python")
    fell_back, decoded = _fan_out(factory, monkeypatch, bulk=True)
    assert decoded is True
    assert _written("sql") == sql_before and _written("python") - python_before == len(fell_back)
    assert fell_back == per_event
    assert "TASK_COMPLETED" in {d[1] for d in fell_back}


def test_the_statement_builds_only_the_services_annotation_created(database):
    _, factory = database
    _labeled(factory, org_wide_all=False)
    with factory() as session:
        good = list(session.scalars(select(EventOutbox.id).where(EventOutbox.action == "ANNOTATION_CREATED")))
        assert good and bulk.builds_all(session, good) and bulk.builds_all(session, [])
        row = session.get_one(EventOutbox, good[0])
        annotation, task = row.objects["annotation"], row.objects["task"]
        naive = {**task, "values": {**task["values"], "updated_at": task["values"]["updated_at"][:19]}}
        others = [
            ("TASK_COMPLETED", row.objects),
            ("ANNOTATION_CREATED", {**row.objects, "project": {"id": row.project_id}}),
            ("ANNOTATION_CREATED", {"annotation": {"$row": "annotations", "id": 1}, "task": task}),
            ("ANNOTATION_CREATED", {"annotation": annotation, "task": {"$row": "tasks", "id": 1}}),
            ("ANNOTATION_CREATED", {"annotation": annotation, "task": {**task, "$row": "annotations"}}),
            ("ANNOTATION_CREATED", {"annotation": annotation, "task": naive}),  # written without +00:00
            ("ANNOTATION_CREATED", {"annotation": annotation}),
        ]
        for action, objects in others:
            other = EventOutbox(project_id=row.project_id, action=action, objects=objects, created_at=utcnow())
            session.add(other)
            session.flush()
            assert not bulk.builds_all(session, [*good, other.id]), (action, objects)
            session.delete(other)
            session.flush()
        session.rollback()
