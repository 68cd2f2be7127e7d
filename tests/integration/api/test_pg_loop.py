"""The labeling loop's PostgreSQL path (workflow/pg_loop.py): who answers, and that it leaves what the services leave.

The whole API suite runs on PostgreSQL through this path, so its rules are tested there; these
tests pin down which calls the database functions answer and which they hand to the services.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import select

from api_server import events
from api_server.db.models import TaskLock
from api_server.metrics import REGISTRY
from api_server.workflow import pg_loop
from api_server.workflow.pg_loop import _Freshness
from tests.conftest import TEXT_CONFIG
from tests.support.labeling import choice, member, project_with_tasks
from tests.support.services import POSTGRES_URL, require_port


def _calls() -> dict[tuple[str, str], float]:
    return {
        (call, by): REGISTRY.get_sample_value("kubelabel_pg_loop_calls_total", {"call": call, "by": by}) or 0.0
        for call in ("next", "submit")
        for by in ("database", "services")
    }


def _delta(before: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    return {key: value - before[key] for key, value in _calls().items() if value != before[key]}


def test_next_and_submit_are_one_database_call_each_on_postgres(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 2, overlap=1)
    annotator = member(api, live_server, project["id"], "annotator", "ann")
    before = _calls()
    with annotator:
        task = annotator.get(f"/api/projects/{project['id']}/next").json()
        assert task["id"] == tasks[0] and task["state"] == "in_progress" and task["drafts"] == []
        # Fetched again (a reload): the same task, its lock extended.
        assert annotator.get(f"/api/projects/{project['id']}/next").json()["id"] == tasks[0]
        created = annotator.post(f"/api/tasks/{tasks[0]}/annotations/", json={"result": choice(), "lead_time": 2.5})
        assert created.status_code == 201, created.text
        skipped = annotator.post(f"/api/tasks/{tasks[1]}/skip/", json={"lead_time": 1.0})
        assert skipped.status_code == 201, skipped.text
        assert annotator.get(f"/api/projects/{project['id']}/next").status_code == 404
    annotation = created.json()
    assert annotation["completed_by"] == annotator.user_id and annotation["created_username"] == "ann"
    assert annotation["lead_time"] == 2.5 and annotation["state"] == "submitted"
    assert skipped.json()["was_cancelled"] is True and skipped.json()["last_action"] == "skipped"
    # What the services would have left: counters, state, history, no lock.
    done = api.get(f"/api/tasks/{tasks[0]}").json()
    assert (done["total_annotations"], done["is_labeled"], done["state"]) == (1, True, "completed")
    history = [(t["from_state"], t["to_state"], t["comment"]) for t in api.get(f"/api/tasks/{tasks[0]}/history").json()]
    assert history == [
        ("new", "in_progress", "handed out by /next"),
        ("in_progress", "completed", f"annotation {annotation['id']} submitted"),
    ]
    assert api.get(f"/api/tasks/{tasks[1]}").json()["state"] == "skipped"
    expected = {("next", "database"): 3, ("submit", "database"): 2} if live_server.backend == "postgres" else {}
    assert _delta(before) == expected


def test_cases_the_services_decide_are_handed_to_them(api, live_server):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 3, overlap=1)
    pid = project["id"]
    annotator = member(api, live_server, pid, "annotator", "ann")
    viewer = member(api, live_server, pid, "viewer", "view")
    before = _calls()
    with annotator, viewer:
        # Answered by the database, errors included: 403 naming the role, 404 for no project.
        r = viewer.get(f"/api/projects/{pid}/next")
        assert r.status_code == 403 and "annotator role" in r.json()["detail"]
        assert annotator.get("/api/projects/999999/next").status_code == 404
        r = annotator.post(f"/api/tasks/{tasks[0]}/annotations/", json={"result": [{"from_name": "nope"}]})
        assert r.status_code == 400 and "from_name" in r.text  # checked before anything is written
        # Someone listens for ANNOTATION_CREATED: the function submits and writes the events (outbox).
        hook = api.post("/api/webhooks/", json={"project": pid, "url": "http://127.0.0.1:9/hook"})
        assert hook.status_code == 201, hook.text
        assert annotator.post(f"/api/tasks/{tasks[0]}/annotations/", json={"result": choice()}).status_code == 201
        # The project hands a caller's own skips back to them: the services pick the task.
        api.patch(f"/api/projects/{pid}/", json={"skip_queue": "REQUEUE_FOR_ME"}).raise_for_status()
        assert annotator.get(f"/api/projects/{pid}/next").status_code == 200
    if live_server.backend == "postgres":
        assert _delta(before) == {("next", "database"): 2, ("submit", "database"): 2, ("next", "services"): 1}
    else:
        assert _delta(before) == {}


def test_a_subscriber_to_task_completed_alone_hears_every_completion(api, live_server):
    """A submission may publish TASK_COMPLETED too: the function writes it for a listener of it alone."""
    seen: list[tuple[str, int]] = []
    before = _calls()

    def on_completed(session, project_id, action, objects):
        seen.append((action, objects["task"].id))

    events.subscribe(on_completed, actions=["TASK_COMPLETED"])
    pg_loop._submit_checked.cache_clear()  # built once from the subscribers (wiring.wire runs first)
    try:
        project, tasks = project_with_tasks(api, TEXT_CONFIG, 2, overlap=1)
        with member(api, live_server, project["id"], "annotator", "ann") as annotator:
            for task in tasks:
                r = annotator.post(f"/api/tasks/{task}/annotations/", json={"result": choice()})
                assert r.status_code == 201, r.text
        deadline = time.monotonic() + 10
        while len(seen) < len(tasks) and time.monotonic() < deadline:
            time.sleep(0.02)  # fanned out after the commit
    finally:
        events.unsubscribe(on_completed)
        pg_loop._submit_checked.cache_clear()
    assert seen == [("TASK_COMPLETED", task) for task in tasks]
    assert ("submit", "services") not in _delta(before)


def test_a_submission_is_checked_against_the_projects_current_rules(api, live_server):
    """The PostgreSQL path checks a submission against the rules it last saw; a changed project is re-read."""
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 3, overlap=1)
    pid = project["id"]
    annotator = member(api, live_server, pid, "annotator", "ann")

    def relabel(*choices: str) -> None:
        options = "".join(f'<Choice value="{c}"/>' for c in choices)
        config = TEXT_CONFIG.split("<Choice ")[0] + options + "</Choices>\n</View>"
        api.patch(f"/api/projects/{pid}/", json={"label_config": config}).raise_for_status()

    def submit(task: int, label: str) -> httpx.Response:
        assert annotator.get(f"/api/projects/{pid}/next").json()["id"] == task
        return annotator.post(f"/api/tasks/{task}/annotations/", json={"result": choice(label)})

    before = _calls()
    with annotator:
        assert submit(tasks[0], "Positive").status_code == 201  # the rules as they were, now seen
        r = annotator.post(f"/api/tasks/{tasks[1]}/annotations/", json={"result": choice("Nope")})
        assert r.status_code == 400 and api.get(f"/api/tasks/{tasks[1]}").json()["total_annotations"] == 0
        relabel("Positive", "Negative", "Neutral", "Mixed")
        assert submit(tasks[1], "Mixed").status_code == 201  # a label only the new config has
        relabel("Positive", "Mixed")
        refused = submit(tasks[2], "Negative")  # a label only the old config had
    assert refused.status_code == 400 and "Negative" in refused.text
    assert api.get(f"/api/tasks/{tasks[2]}").json()["total_annotations"] == 0
    if live_server.backend == "postgres":
        assert _delta(before) == {("next", "database"): 3, ("submit", "database"): 4}


@pytest.mark.postgres
def test_pooled_connections_are_pinged_only_after_sitting_idle(monkeypatch):
    require_port("PostgreSQL", "127.0.0.1", 5432)
    pings: list[object] = []
    ping = AsyncConnectionPool.check_connection

    async def counted_ping(conn) -> None:
        pings.append(conn)
        await ping(conn)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", staticmethod(counted_ping))
    freshness = _Freshness()
    dsn = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")

    async def scenario() -> tuple[int, int]:
        pool = AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False, check=freshness.check)
        async with pool:
            for _ in range(5):  # back-to-back requests: the first checkout pings, the rest do not
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1")
            busy = len(pings)
            freshness.FRESH_SECONDS = 0.05
            await asyncio.sleep(0.1)
            async with pool.connection() as conn:  # idle for longer: pinged before use
                await conn.execute("SELECT 1")
            return busy, len(pings)

    assert asyncio.run(scenario()) == (1, 2)


def test_a_move_the_function_may_not_make_is_rolled_back_and_handed_to_the_services(api, live_server, monkeypatch):
    project, tasks = project_with_tasks(api, TEXT_CONFIG, 1, overlap=1)
    annotator = member(api, live_server, project["id"], "annotator", "ann")
    # As if the state machine had no new -> in_progress: kubelabel_next_task raises KL409 after
    # claiming the task, which rolls its claim back; the services (with the real table) answer.
    moves = [m for m in pg_loop.MOVES if m != "new>in_progress"]
    monkeypatch.setattr(pg_loop, "MOVES_ARRAY", pg_loop.text_array(moves))
    before = _calls()
    with annotator:
        r = annotator.get(f"/api/projects/{project['id']}/next")
    assert r.status_code == 200 and r.json()["id"] == tasks[0]
    with live_server.session_factory() as session:
        locks = session.scalars(select(TaskLock)).all()
    assert [(lock.task_id, lock.user_id) for lock in locks] == [(tasks[0], annotator.user_id)]
    history = api.get(f"/api/tasks/{tasks[0]}/history").json()
    assert [(t["from_state"], t["to_state"]) for t in history] == [("new", "in_progress")]
    assert _delta(before) == ({("next", "services"): 1} if live_server.backend == "postgres" else {})


@pytest.mark.postgres
def test_connections_the_database_dropped_cost_no_request(server_pool, monkeypatch):
    # Every checkout counts as fresh (no ping), however slow the machine: the dropped connections
    # must reach a statement, which is the case this test is about.
    monkeypatch.setattr(_Freshness, "FRESH_SECONDS", 3600.0)
    server = server_pool.new("postgres")
    with server.client() as api:
        project, tasks = project_with_tasks(api, TEXT_CONFIG, 3, overlap=1)
        annotator = member(api, server, project["id"], "annotator", "ann")
        with annotator:
            first = annotator.get(f"/api/projects/{project['id']}/next").json()["id"]
            assert annotator.post(f"/api/tasks/{first}/annotations/", json={"result": choice()}).status_code == 201
            # The database drops every connection of the server (a restart, a failover) while the
            # loop's pool still holds them as freshly used.
            database = server.database_url.rpartition("/")[2]
            with psycopg.connect(POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as c:
                dropped = c.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", (database,)
                ).fetchone()[0]
            assert dropped > 0
            before = _calls()
            second = annotator.get(f"/api/projects/{project['id']}/next")
            assert second.status_code == 200, second.text
            created = annotator.post(f"/api/tasks/{second.json()['id']}/annotations/", json={"result": choice()})
            assert created.status_code == 201, created.text
            assert annotator.get(f"/api/projects/{project['id']}/next").status_code == 200
    assert sorted({second.json()["id"], first}) == tasks[:2]
    # The broken connections were handed back to the services, then the pool reconnected.
    calls = _delta(before)
    assert calls.get(("next", "services"), 0) + calls.get(("submit", "services"), 0) >= 1
    assert calls.get(("next", "database"), 0) >= 1
