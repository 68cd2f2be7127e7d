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
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api_server import wiring
from api_server.annotations import service as annotations
from api_server.annotations.schemas import AnnotationCreate
from api_server.db import migrate
from api_server.db.base import utcnow
from api_server.db.models import EventOutbox, User
from api_server.db.session import make_engine, make_session_factory
from tests.integration.api.test_webhook_bulk import (
    RESULT,
    falls_back_whole,
    project_with_hooks,
    refused_beside_good,
    same_both_ways,
)


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
    full = same_both_ways(factory, monkeypatch)
    first = full[0]
    assert first["annotation"]["created_username"] == "annotator" and first["annotation"]["lead_time"] == 3.0
    assert first["annotation"]["created_at"].endswith("Z")
    assert first["task"]["created_at"].endswith("+00:00") and first["task"]["meta"] == {"i": 0}
    assert first["task"]["is_labeled"] is True and first["task"]["data"] == {"text": "t0"}
    assert full[2]["annotation"]["ground_truth"] is True and full[3]["annotation"]["was_cancelled"] is True
    assert first["project"]["title"] == "bulk" and first["project"]["task_number"] == 5


def test_a_batch_with_an_event_the_statement_does_not_build_goes_per_event(database, monkeypatch):
    _, factory = database
    _labeled(factory, org_wide_all=True)
    falls_back_whole(factory, monkeypatch)


def test_the_statement_builds_only_the_services_annotation_created(database):
    _, factory = database
    _labeled(factory, org_wide_all=False)

    def others(row: EventOutbox) -> list[tuple[str, Any]]:
        annotation, task = row.objects["annotation"], row.objects["task"]
        naive = {**task, "values": {**task["values"], "updated_at": task["values"]["updated_at"][:19]}}
        return [
            ("TASK_COMPLETED", row.objects),
            ("ANNOTATION_CREATED", {**row.objects, "project": {"id": row.project_id}}),
            ("ANNOTATION_CREATED", {"annotation": {"$row": "annotations", "id": 1}, "task": task}),
            ("ANNOTATION_CREATED", {"annotation": annotation, "task": {"$row": "tasks", "id": 1}}),
            ("ANNOTATION_CREATED", {"annotation": annotation, "task": {**task, "$row": "annotations"}}),
            ("ANNOTATION_CREATED", {"annotation": annotation, "task": naive}),  # written without +00:00
            ("ANNOTATION_CREATED", {"annotation": annotation}),
        ]

    refused_beside_good(factory, others)
