"""The fan-out's two ways to webhook deliveries write the same rows (api_server/webhooks/bulk.py).

Submissions go through the labeling loop's PostgreSQL function, which writes their events into the
outbox as the fast path does under load. The same outbox batch is then fanned out twice, each in a
transaction rolled back afterwards: once per event in Python, once by PostgreSQL in one statement.
Both must write the same deliveries, payloads value for value, in the same order; and a batch
with an event a webhook hears that the statement does not build goes the per-event way whole.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from psycopg.types.json import Jsonb
from sqlalchemy import Engine, Text, cast, delete, select
from sqlalchemy.orm import Session, sessionmaker

from api_server import events, wiring
from api_server.common.time import as_utc
from api_server.db import migrate
from api_server.db.base import utcnow
from api_server.db.models import EventOutbox, MLBackend, Project, Task, User, Webhook, WebhookDelivery
from api_server.db.session import make_engine, make_session_factory
from api_server.metrics import REGISTRY
from api_server.webhooks import bulk
from api_server.webhooks import service as webhook_service
from api_server.workflow import pg_loop
from tests.conftest import TEXT_CONFIG
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.services import require_port

RESULT = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]


@pytest.fixture
def database() -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    require_port("PostgreSQL", "127.0.0.1", 5432)
    url = create_postgres_database()
    migrate.upgrade(url)
    engine = make_engine(url)
    wiring.wire()
    yield engine, make_session_factory(engine)
    engine.dispose()
    drop_postgres_database(url)


def _webhook(project_id: int | None, **fields: Any) -> Webhook:
    base = {"url": "http://127.0.0.1:9/hook", "headers": {}, "is_active": True, "consecutive_failures": 0}
    return Webhook(project_id=project_id, **(base | fields))


def _submit(
    engine: Engine, task_id: int, user_id: int, project_id: int, expect: str = "published", **values: Any
) -> dict[str, Any]:
    """One submission through kubelabel_submit_checked, as the fast path calls it (its rules first);
    its answer. Given `project_form` and `project_updated`, its deliveries may be written with it."""
    params = {
        "task_id": task_id,
        "user_id": user_id,
        "admin": True,
        "allowed": pg_loop.LABELERS,
        "project_id": project_id,
        "rules": "",
        "result": Jsonb(RESULT),
        "was_cancelled": False,
        "ground_truth": False,
        "lead_time": None,
        "parent_prediction": None,
        "parent_annotation": None,
        "import_id": None,
        "last_action": "submitted",
        "draft_created_at": None,
        "now": utcnow(),
        "moves": pg_loop.MOVES,
        "project_updated": None,  # no payload form: its events go through the outbox
        "project_form": None,
    } | values
    with engine.begin() as conn:
        stale = conn.exec_driver_sql(pg_loop._submit_checked(), params).mappings().one()
        assert stale["status"] == "stale"
        answer = conn.exec_driver_sql(pg_loop._submit_checked(), params | {"rules": stale["rules"]}).mappings().one()
        assert answer["status"] == expect, answer
    return dict(answer)


def _written(path: str) -> float:
    return REGISTRY.get_sample_value("kubelabel_webhook_deliveries_written_total", {"path": path}) or 0.0


def _fan_out(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> tuple[list[tuple], bool | None]:
    """The outbox fanned out (and rolled back): the deliveries written, in id order, and whether
    its rows were decoded in Python (read lazily, as the fan-out reads them): True all,
    False none, None some."""
    subscriptions = list(events._subscriptions)
    if not bulk:
        subscriptions = [dataclasses.replace(s, prepare=None) for s in subscriptions]
    with monkeypatch.context() as m, factory() as session:
        m.setattr(events, "_subscriptions", subscriptions)
        rows = events._oldest(session, 10_000)
        events._run(session, rows)
        read = {r._objects is not events._UNREAD for r in rows}
        decoded = read.pop() if len(read) == 1 else None
        D = WebhookDelivery
        written = session.execute(
            select(D.webhook_id, D.action, D.task_id, D.status, D.attempts, cast(D.payload, Text)).order_by(D.id)
        ).all()
        session.rollback()
    return [(*row[:-1], json.loads(row[-1])) for row in written], decoded


def project_with_hooks(factory: sessionmaker[Session], org_wide_all: bool) -> tuple[list[int], int, int]:
    """A user, a project of five tasks and two webhooks on ANNOTATION_CREATED (one sends payloads),
    and with `org_wide_all` an organisation-wide one hearing everything: (task ids, user, project)."""
    with factory() as session:
        user = User(username="annotator", role="admin")
        project = Project(title="bulk", label_config=TEXT_CONFIG)
        session.add_all([user, project])
        session.flush()
        tasks = [Task(project_id=project.id, data={"text": f"t{i}"}, meta={"i": i}, overlap=1) for i in range(5)]
        hooks = [
            _webhook(project.id, send_payload=True, send_for_all_actions=False, actions=["ANNOTATION_CREATED"]),
            _webhook(project.id, send_payload=False, send_for_all_actions=False, actions=["ANNOTATION_CREATED"]),
        ]
        if org_wide_all:  # hears TASK_COMPLETED as well: an event the statement does not build
            hooks.append(_webhook(None, send_payload=True, send_for_all_actions=True, actions=[]))
        session.add_all([*tasks, *hooks])
        session.commit()
        return [t.id for t in tasks], user.id, project.id


def _labeled(engine: Engine, factory: sessionmaker[Session], org_wide_all: bool) -> None:
    ids, user_id, project_id = project_with_hooks(factory, org_wide_all)
    whole_second = utcnow().replace(microsecond=0)
    # Lead times of each JSON kind, a draft's time, timestamps with and without microseconds, a skip.
    variants: list[dict[str, Any]] = [
        {"lead_time": 3.0, "now": whole_second},
        {"lead_time": 2.5, "draft_created_at": whole_second - timedelta(seconds=7)},
        {"lead_time": 0.001, "ground_truth": True},
        {"was_cancelled": True, "last_action": "skipped", "result": Jsonb([])},
        {},
    ]
    for task_id, values in zip(ids, variants, strict=True):
        _submit(engine, task_id, user_id, project_id, **values)


def same_both_ways(factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The outbox (five ANNOTATION_CREATED, two webhooks) fanned out per event and by the statement:
    the same deliveries, the statement's written with nothing decoded in Python; the full payloads."""
    per_event, decoded = _fan_out(factory, monkeypatch, bulk=False)
    assert decoded is True
    sql_before = _written("sql")
    by_statement, decoded = _fan_out(factory, monkeypatch, bulk=True)
    assert _written("sql") - sql_before == len(by_statement)  # the statement wrote them, not the events' loop
    assert decoded is False  # it read the stored rows itself: nothing decoded in Python

    assert len(per_event) == 5 * 2  # each annotation to both webhooks (TASK_COMPLETED is heard by none)
    assert by_statement == per_event
    # Each delivery's task is its payload's (the order key), the task's two deliveries one after the other.
    assert [d[2] for d in by_statement] == [d[-1]["task"]["id"] for d in by_statement if len(d[-1]) > 1 for _ in (0, 1)]
    full = [d[-1] for d in per_event if len(d[-1]) > 1]
    assert {d[-1]["action"] for d in per_event} == {"ANNOTATION_CREATED"} and len(full) == 5
    assert all(set(payload) == {"action", "annotation", "task", "project"} for payload in full)
    return full


def test_the_statement_writes_what_the_per_event_fan_out_writes(database, monkeypatch):
    engine, factory = database
    _labeled(engine, factory, org_wide_all=False)
    full = same_both_ways(factory, monkeypatch)
    # The forms themselves (each path built them from the same rows; these say which form that is).
    first = full[0]
    assert first["annotation"]["created_username"] == "annotator" and first["annotation"]["lead_time"] == 3.0
    assert first["annotation"]["created_at"].endswith("Z") and "." not in first["annotation"]["created_at"]
    assert first["task"]["created_at"].endswith("+00:00") and first["task"]["meta"] == {"i": 0}
    assert (
        full[1]["annotation"]["draft_created_at"].endswith("Z") and "." not in full[1]["annotation"]["draft_created_at"]
    )
    assert "." in full[2]["annotation"]["created_at"] and full[2]["annotation"]["ground_truth"] is True
    assert full[3]["annotation"]["state"] == "skipped" and full[3]["annotation"]["was_cancelled"] is True
    assert first["project"]["title"] == "bulk" and first["project"]["task_number"] == 5


def falls_back_whole(factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """The outbox (with a TASK_COMPLETED a webhook hears) fanned out per event whole, as without the statement."""
    per_event, _ = _fan_out(factory, monkeypatch, bulk=False)
    sql_before, python_before = _written("sql"), _written("python")
    fell_back, decoded = _fan_out(factory, monkeypatch, bulk=True)
    assert decoded is True
    assert _written("sql") == sql_before and _written("python") - python_before == len(fell_back)
    assert fell_back == per_event
    assert "TASK_COMPLETED" in {d[1] for d in fell_back}


def test_a_batch_with_an_event_the_statement_does_not_build_goes_per_event(database, monkeypatch):
    engine, factory = database
    _labeled(engine, factory, org_wide_all=True)
    falls_back_whole(factory, monkeypatch)


def refused_beside_good(factory: sessionmaker[Session], others: Callable[[EventOutbox], list[tuple[str, Any]]]) -> None:
    """Each of `others(a good row)` (action, objects), written beside the outbox's good rows, is not built."""
    with factory() as session:
        good = list(session.scalars(select(EventOutbox.id).where(EventOutbox.action == "ANNOTATION_CREATED")))
        assert good and bulk.builds_all(session, good) and bulk.builds_all(session, [])
        row = session.get_one(EventOutbox, good[0])
        for action, objects in others(row):
            other = EventOutbox(project_id=row.project_id, action=action, objects=objects, created_at=utcnow())
            session.add(other)
            session.flush()
            assert not bulk.builds_all(session, [*good, other.id]), (action, objects)
            session.delete(other)
            session.flush()
        session.rollback()


def test_the_statement_builds_only_annotation_created_with_stored_rows(database):
    engine, factory = database
    _labeled(engine, factory, org_wide_all=False)

    def others(row: EventOutbox) -> list[tuple[str, Any]]:
        annotation, task = row.objects["annotation"], row.objects["task"]
        return [
            ("TASK_COMPLETED", row.objects),
            ("ANNOTATION_CREATED", {**row.objects, "project": {"id": row.project_id}}),
            ("ANNOTATION_CREATED", {"annotation": {"$row": annotation["$row"], "id": 1}, "task": task}),
            ("ANNOTATION_CREATED", {"annotation": annotation, "task": {"$row": "tasks", "id": 1}}),
            ("ANNOTATION_CREATED", {"annotation": {**annotation, "$row": "annotations"}, "task": task}),
            ("ANNOTATION_CREATED", {"annotation": annotation}),
        ]

    refused_beside_good(factory, others)


def _outbox_actions(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(EventOutbox.action).order_by(EventOutbox.id)))


def test_the_function_writes_only_the_events_someone_hears(database):
    engine, factory = database
    _labeled(engine, factory, org_wide_all=False)  # webhooks on ANNOTATION_CREATED alone
    assert _outbox_actions(factory) == ["ANNOTATION_CREATED"] * 5  # the five tasks completed, unheard
    with factory() as session:
        user = session.scalars(select(User)).one()
        project = Project(title="completions", label_config=TEXT_CONFIG)
        session.add(project)
        session.flush()
        tasks = [Task(project_id=project.id, data={"text": f"t{i}"}, meta={}, overlap=1) for i in range(3)]
        # Its one webhook takes ANNOTATION_UPDATED alone: neither of a submission's events is heard.
        hook = _webhook(project.id, send_for_all_actions=False, actions=["ANNOTATION_UPDATED"])
        session.add_all([*tasks, hook])
        session.commit()
        ids, user_id, project_id = [t.id for t in tasks], user.id, project.id
    _submit(engine, ids[0], user_id, project_id, expect="ok")
    with factory() as session:
        session.get_one(Webhook, hook.id).actions = ["ANNOTATION_UPDATED", "TASK_COMPLETED"]
        session.commit()
    _submit(engine, ids[1], user_id, project_id)
    new = _outbox_actions(factory)[5:]
    assert new == ["TASK_COMPLETED"]
    with factory() as session:
        session.get_one(Webhook, hook.id).send_for_all_actions = True
        session.commit()
    _submit(engine, ids[2], user_id, project_id)
    assert _outbox_actions(factory)[6:] == ["TASK_COMPLETED", "ANNOTATION_CREATED"]


def _form(factory: sessionmaker[Session], project_id: int) -> dict[str, Any]:
    """The project's payload form, made now, as the labeling loop passes it (webhooks.service keeps it)."""
    with factory() as session:
        form = webhook_service._project_json(session, project_id, remake=True)
        updated = session.get_one(Project, project_id).updated_at
    return {"project_form": json.dumps(form), "project_updated": as_utc(updated)}


def _deliveries(factory: sessionmaker[Session]) -> list[tuple]:
    with factory() as session:
        D = WebhookDelivery
        found = session.execute(
            select(D.webhook_id, D.action, D.task_id, D.status, D.attempts, cast(D.payload, Text)).order_by(D.id)
        ).all()
    return [(*row[:-1], json.loads(row[-1])) for row in found]


def test_a_submission_the_webhooks_alone_hear_writes_what_the_fan_out_would(database, monkeypatch):
    """Given the project's form, the statement writes the submission's deliveries itself: no outbox
    row; the same deliveries, payloads value for value, as the per-event fan-out of the outbox's."""
    engine, factory = database
    _labeled(engine, factory, org_wide_all=False)  # through the outbox (no form given)
    expected, _ = _fan_out(factory, monkeypatch, bulk=False)
    with factory() as session:
        user = session.scalars(select(User)).one()
        first = session.scalars(select(Project)).one()
        second = Project(title="direct", label_config=TEXT_CONFIG)
        session.add(second)
        session.flush()
        # The same tasks and webhooks again, in a project of their own (their ids mapped below).
        old_tasks = list(session.scalars(select(Task).where(Task.project_id == first.id).order_by(Task.id)))
        tasks = [Task(project_id=second.id, data=t.data, meta=t.meta, overlap=1) for t in old_tasks]
        old_hooks = list(session.scalars(select(Webhook).order_by(Webhook.id)))
        hooks = [
            _webhook(second.id, send_payload=h.send_payload, send_for_all_actions=False, actions=h.actions)
            for h in old_hooks
        ]
        session.add_all([*tasks, *hooks])
        session.commit()
        task_ids = {o.id: n.id for o, n in zip(old_tasks, tasks, strict=True)}
        hook_ids = {o.id: n.id for o, n in zip(old_hooks, hooks, strict=True)}
        user_id, project_id, created = (
            user.id,
            second.id,
            {n.id: as_utc(o.created_at) for o, n in zip(old_tasks, tasks, strict=True)},
        )
        outbox = session.scalars(select(EventOutbox.objects).order_by(EventOutbox.id)).all()
    for objects in outbox:  # each submission as it was made: its time, values, and the task's
        a = objects["annotation"]["values"]
        task_id = task_ids[a["task_id"]]
        with engine.begin() as conn:  # the copied tasks' creation times, so the payloads' tasks match
            conn.exec_driver_sql("UPDATE tasks SET created_at = %s WHERE id = %s", (created[task_id], task_id))
        answer = _submit(
            engine,
            task_id,
            user_id,
            project_id,
            expect="ok",
            now=datetime.fromisoformat(a["created_at"]),
            lead_time=a["lead_time"],
            ground_truth=a["ground_truth"],
            was_cancelled=a["was_cancelled"],
            last_action=a["last_action"],
            result=Jsonb(a["result"]),
            draft_created_at=a["draft_created_at"] and datetime.fromisoformat(a["draft_created_at"]),
            **_form(factory, project_id),
        )
        assert answer["wanted"] and answer["current"] and answer["deliveries"] == 2
    assert _outbox_actions(factory) == ["ANNOTATION_CREATED"] * 5  # the first project's alone
    direct = _deliveries(factory)  # (the first project's were rolled back by _fan_out)
    assert len(direct) == len(expected) == 10

    def comparable(delivery: tuple, tasks: dict[int, int], hooks: dict[int, int]) -> tuple:
        webhook_id, action, task_id, status, attempts, payload = delivery
        if len(payload) > 1:
            payload = json.loads(json.dumps(payload))
            payload["annotation"].pop("id")
            payload["annotation"]["task"] = tasks.get(payload["annotation"]["task"])
            payload["annotation"]["project"] = payload["task"]["project"] = None
            payload["task"]["id"] = tasks.get(payload["task"]["id"])
            payload["task"].pop("inner_id")
            assert payload.pop("project")["title"] in ("bulk", "direct")
        return hooks.get(webhook_id), action, tasks.get(task_id), status, attempts, payload

    mapped = [comparable(d, task_ids, hook_ids) for d in expected]
    assert [
        comparable(d, {v: v for v in task_ids.values()}, {v: v for v in hook_ids.values()}) for d in direct
    ] == mapped
    full = [d[-1] for d in direct if len(d[-1]) > 1]
    assert len(full) == 5 and all(p["project"]["title"] == "direct" for p in full)


def test_a_submission_s_deliveries_go_through_the_outbox_unless_the_webhooks_alone_hear_it(database):
    """Through the outbox, as before: with the form outdated, with an event of its task still waiting
    in the outbox (its deliveries must come first; another task's does not matter), with
    TASK_COMPLETED heard, or with another subscriber (an ML backend) hearing ANNOTATION_CREATED."""
    engine, factory = database
    with factory() as session:
        users = [User(username="first", role="admin"), User(username="second", role="admin")]
        project = Project(title="rules", label_config=TEXT_CONFIG, maximum_annotations=2)
        session.add_all([*users, project])
        session.flush()
        tasks = [Task(project_id=project.id, data={"text": f"t{i}"}, meta={}, overlap=2) for i in range(6)]
        hook = _webhook(project.id, send_for_all_actions=False, actions=["ANNOTATION_CREATED"])
        session.add_all([*tasks, hook])
        session.commit()
        ids, user_ids, project_id = [t.id for t in tasks], [u.id for u in users], project.id

    def submit(task_id: int, user: int = 0, **values: Any) -> tuple[dict[str, Any], list[str]]:
        before = len(_outbox_actions(factory))
        expect = values.pop("expect", "published")
        answer = _submit(engine, task_id, user_ids[user], project_id, expect=expect, **values)
        return answer, _outbox_actions(factory)[before:]

    form = _form(factory, project_id)
    with factory() as session:  # the project changed after its form was made
        session.get_one(Project, project_id).title = "renamed"
        session.commit()
    answer, written = submit(ids[0], **form)
    assert (answer["wanted"], answer["current"], answer["deliveries"], written) == (
        True,
        False,
        0,
        ["ANNOTATION_CREATED"],
    )
    with factory() as session:  # the outbox row names its task
        assert session.scalars(select(EventOutbox.task_id)).all() == [ids[0]]
    # That event still waits to be fanned out: the next submission on its task would pass it.
    answer, written = submit(ids[0], 1, **_form(factory, project_id))
    assert (answer["wanted"], answer["current"], answer["deliveries"], written) == (
        True,
        True,
        0,
        ["ANNOTATION_CREATED"],
    )
    answer, written = submit(ids[1], expect="ok", **_form(factory, project_id))  # another task's: no matter
    assert (answer["wanted"], answer["deliveries"], written) == (True, 1, [])
    with factory() as session:
        session.execute(delete(EventOutbox))
        session.commit()
    answer, written = submit(ids[1], 1, expect="ok", **_form(factory, project_id))
    assert (answer["wanted"], answer["deliveries"], written) == (True, 1, [])
    with factory() as session:
        session.get_one(Webhook, hook.id).actions = ["ANNOTATION_CREATED", "TASK_COMPLETED"]
        session.commit()
    answer, written = submit(ids[2], **_form(factory, project_id))
    assert (answer["wanted"], answer["deliveries"], written) == (False, 0, ["ANNOTATION_CREATED"])
    answer, written = submit(ids[2], 1, **_form(factory, project_id))
    assert (answer["wanted"], answer["deliveries"], written) == (False, 0, ["TASK_COMPLETED", "ANNOTATION_CREATED"])
    with factory() as session:
        session.get_one(Webhook, hook.id).actions = ["ANNOTATION_CREATED"]
        session.add(MLBackend(project_id=project_id, url="http://127.0.0.1:9/ml", title="m"))
        session.execute(delete(EventOutbox))
        session.commit()
    answer, written = submit(ids[3], **_form(factory, project_id))
    assert (answer["wanted"], answer["deliveries"], written) == (False, 0, ["ANNOTATION_CREATED"])


def test_an_event_the_services_publish_names_its_task(database):
    engine, factory = database
    with factory() as session:
        project = Project(title="services", label_config=TEXT_CONFIG)
        session.add(project)
        session.flush()
        task = Task(project_id=project.id, data={"text": "t"}, meta={}, overlap=1)
        session.add_all([task, _webhook(project.id, send_for_all_actions=True, actions=[])])
        session.flush()
        events.publish(session, project.id, "TASK_COMPLETED", task=task)
        events.publish(session, project.id, "ANNOTATION_UPDATED", annotation={"id": 1, "task": task.id})
        events.publish(session, project.id, "TASKS_DELETED", tasks=[task.id])
        session.commit()
        rows = session.execute(select(EventOutbox.action, EventOutbox.task_id).order_by(EventOutbox.id)).all()
    assert rows == [("TASK_COMPLETED", task.id), ("ANNOTATION_UPDATED", task.id), ("TASKS_DELETED", None)]
