"""SQLite: a fan-out makes the webhook deliveries before it takes the write lock (api_server/events.py).

Submissions wait for SQLite's one write lock; a fan-out used to hold it while it decoded every event
and built every payload. The deliveries are now made before the lock and only written under it.
They must be what the per-event way writes, and rows another process fanned out in between must
not be fanned out again. A batch the database builds itself (webhooks/bulk.py) is only checked
before the lock; its one statement runs under it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Text, cast, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from api_server import events, wiring
from api_server.db.base import Base
from api_server.db.models import Annotation, EventOutbox, Project, Task, User, Webhook, WebhookDelivery
from api_server.db.session import make_engine, make_session_factory
from api_server.db.writer import SQLITE_WRITER
from api_server.metrics import REGISTRY
from api_server.webhooks import bulk, service

WRITTEN = "kubelabel_webhook_deliveries_written_total"

EVENTS = 6


def _database(path: Path) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{path}")
    return engine, make_session_factory(engine)


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A SQLite file with two webhooks and EVENTS annotations published as the services publish them."""
    wiring.wire()
    path = tmp_path / "published.db"
    engine, factory = _database(path)
    Base.metadata.create_all(engine)
    with factory() as session:
        user = User(username="annotator", role="admin")
        project = Project(title="ahead")
        session.add_all([user, project])
        session.flush()
        hook = {"url": "http://127.0.0.1:9/hook", "headers": {}, "send_for_all_actions": False}
        hook |= {"actions": ["ANNOTATION_CREATED"], "is_active": True, "consecutive_failures": 0}
        session.add_all([Webhook(project_id=project.id, send_payload=p, **hook) for p in (True, False)])
        for i in range(EVENTS):
            task = Task(project_id=project.id, data={"text": f"t{i}"})
            session.add(task)
            session.flush()
            annotation = Annotation(task_id=task.id, project_id=project.id, completed_by_id=user.id, result=[])
            session.add(annotation)
            session.flush()
            objects = {"annotation": {"id": annotation.id, "task": task.id, "lead_time": i + 0.5}, "task": task}
            events.publish(session, project.id, "ANNOTATION_CREATED", **objects)
        session.commit()
    engine.dispose()
    return path


def _deliveries(factory: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    D = WebhookDelivery
    with factory() as session:
        rows = session.execute(select(D.webhook_id, D.action, D.task_id, cast(D.payload, Text)).order_by(D.id)).all()
    return [(*r[:-1], {k: v for k, v in json.loads(r[-1]).items() if k != "project"}) for r in rows]


def _fan_out(path: Path, monkeypatch: pytest.MonkeyPatch, prepare: Callable[..., Any] | None) -> list[tuple]:
    engine, factory = _database(path)
    subscriptions = [
        dataclasses.replace(s, prepare=prepare) if s.handler is service.on_event else s
        for s in list(events._subscriptions)
    ]
    try:
        with monkeypatch.context() as m:
            m.setattr(events, "_subscriptions", subscriptions)
            assert events.fan_out(factory) > 0
        with factory() as session:
            assert session.scalar(select(func.count()).select_from(EventOutbox)) == 0
        return _deliveries(factory)
    finally:
        engine.dispose()


@pytest.mark.parametrize("way", ["python", "sql"])
def test_deliveries_made_before_the_lock_are_those_made_per_event(published, tmp_path, monkeypatch, way):
    """`python`: made in Python before the lock, written under it. `sql`: the batch is one the
    database builds (webhooks/bulk.py): only its check runs before the lock, its statement under it."""
    copy = tmp_path / "copy.db"
    shutil.copy(published, copy)
    if way == "python":
        monkeypatch.setattr(bulk, "builds_all", lambda session, ids: False)
    written = {p: REGISTRY.get_sample_value(WRITTEN, {"path": p}) or 0.0 for p in ("python", "sql")}
    holding: list[bool] = []

    def prepare(session: Session, rows: list[Any]) -> Any:
        holding.append(SQLITE_WRITER._owner == threading.get_ident())
        return service.prepare(session, rows)

    ahead = _fan_out(published, monkeypatch, prepare)
    assert holding == [False]  # made once, before the write lock
    per_event = _fan_out(copy, monkeypatch, None)
    assert len(per_event) == EVENTS * 2 and ahead == per_event
    assert [d[-1]["annotation"]["lead_time"] for d in ahead[::2]] == [i + 0.5 for i in range(EVENTS)]
    after = {p: REGISTRY.get_sample_value(WRITTEN, {"path": p}) for p in ("python", "sql")}
    assert after[way] - written[way] == EVENTS * 2 * (2 if way == "python" else 1)


def test_rows_fanned_out_by_another_process_meanwhile_are_not_fanned_out_again(published, monkeypatch):
    taken: list[int] = []

    def prepare_while_another_takes_one(session: Session, rows: list[Any]) -> Any:
        writer = service.prepare(session, rows)
        if not taken:  # another fan-out takes the oldest row between the two phases
            other_engine, other = _database(published)
            with other() as s:
                taken.append(rows[0].id)
                s.execute(delete(EventOutbox).where(EventOutbox.id == rows[0].id))
                s.commit()
            other_engine.dispose()
        return writer

    got = _fan_out(published, monkeypatch, prepare_while_another_takes_one)
    assert taken and len(got) == (EVENTS - 1) * 2  # the rest once each, the taken one not at all
    task_ids = [d[2] for d in got]
    assert len(set(task_ids)) == EVENTS - 1 and all(task_ids.count(t) == 2 for t in task_ids)
