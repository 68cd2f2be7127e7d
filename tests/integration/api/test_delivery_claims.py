"""Claims cost what the deliveries they may take cost, not what waits in the table.

An endpoint down for an hour leaves tens of thousands of pending deliveries, the oldest in the
table. Claims used to walk every due row in id order and drop the backed-off webhook's at the
join: each claim's cost grew with that backlog (50 ms with 50,000 of them, every tenth of a
second). Then they read each open webhook's pending rows whole before taking the oldest: once
that endpoint came back, its backlog was walked by every claim, every other webhook's included
(30-90 ms a claim with 30,000 waiting). And on a table PostgreSQL had no statistics for yet (one
that grew from empty within the minute), the per-task order check compared every pending
delivery of a webhook with every other (420 ms a claim with 1,000 pending). The plans below must
reach the open webhook's rows through its index and stop at what the claim takes, with
statistics and without.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.dialects import postgresql, sqlite

from api_server.db.base import Base, utcnow
from api_server.db.models import Webhook, WebhookDelivery
from api_server.db.session import make_engine, make_session_factory
from api_server.settings import Settings
from api_server.webhooks.engine import HOOKS_PER_CLAIM, DeliveryEngine, claimable, open_webhooks
from tests.support.databases import throwaway

BLOCKED, OPEN, CLAIM = 20_000, 5_000, 64  # an open webhook back from an outage: a backlog of its own


# Analyzed, and as a table that grew from empty within the minute is (no statistics yet).
@pytest.fixture(params=["sqlite", "postgres", "postgres-unanalyzed"])
def engine(request: pytest.FixtureRequest, tmp_path: Path):
    with throwaway(request.param.split("-")[0], tmp_path) as url:
        engine = make_engine(url)
        _fill(engine, analyze=request.param != "postgres-unanalyzed")
        yield engine
        engine.dispose()


def _fill(engine, *, analyze: bool) -> None:
    Base.metadata.create_all(engine)
    now = utcnow()
    hook = {"project_id": None, "send_payload": True, "send_for_all_actions": True, "actions": [], "headers": {}}
    hook |= {"is_active": True, "provisioned": False, "created_at": now, "updated_at": now}
    with engine.begin() as conn:
        conn.execute(
            insert(Webhook.__table__),
            [
                {**hook, "id": 1, "url": "http://127.0.0.1:9/down", "consecutive_failures": 40},
                {**hook, "id": 2, "url": "http://127.0.0.1:9/up", "consecutive_failures": 0},
            ],
        )
        conn.execute(
            text("UPDATE webhooks SET backoff_until = :until WHERE id = 1"), {"until": now + timedelta(hours=1)}
        )
        delivery = {"action": "ANNOTATION_CREATED", "payload": {}, "status": "pending", "attempts": 0}
        delivery |= {"next_attempt_at": now, "created_at": now}
        # The backed-off webhook's backlog first (the oldest ids), then the open one's.
        rows = [{**delivery, "webhook_id": 1, "task_id": i} for i in range(BLOCKED)]
        # The open one's history (delivered: kept for days) and its pending rows.
        rows += [{**delivery, "webhook_id": 2, "task_id": i, "status": "delivered"} for i in range(BLOCKED)]
        # Two per task, as overlap 2 gives: the second waits for the first (half the rows read are not taken).
        rows += [{**delivery, "webhook_id": 2, "task_id": i // 2} for i in range(OPEN)]
        conn.execute(insert(WebhookDelivery.__table__), rows)
        if analyze:
            conn.execute(text("ANALYZE"))


def _rows_read(plan: dict[str, Any]) -> int:
    """Rows the plan's scans of webhook_deliveries returned, over all their loops."""
    own = (
        plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1)
        if plan.get("Relation Name") == "webhook_deliveries"
        else 0
    )
    return own + sum(_rows_read(child) for child in plan.get("Plans", []))


def _sqlite_steps(session: Any, stmt: Any) -> int:
    """SQLite's virtual machine steps to run `stmt` (in hundreds)."""
    conn = session.connection().connection.driver_connection
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn.set_progress_handler(count, 100)
    try:
        assert len(session.execute(stmt).all()) > 0
    finally:
        conn.set_progress_handler(None, 0)
    return steps[0]


def test_claims_read_what_they_take_not_the_backlogs(engine):
    factory = make_session_factory(engine)
    with factory() as session:
        now = utcnow()
        postgres = engine.dialect.name == "postgresql"
        stmt = claimable(now, CLAIM, dict.fromkeys(open_webhooks(session, now), CLAIM), lock=postgres)
        assert stmt is not None
        if postgres:
            sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            plan = session.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
            plan = plan if isinstance(plan, list) else json.loads(plan)
            # What the claim takes and the rows waiting behind them (each with its order check's one
            # index entry), not the 20,000 of the backed-off webhook nor the 5,000 of the open one.
            assert _rows_read(plan[0]["Plan"]) <= 6 * CLAIM
        else:
            sql = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
            steps = [row[-1] for row in session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
            outer = [s for s in steps if "webhook_deliveries" in s and "AS" not in s.split("webhook_deliveries")[0]]
            assert outer and all("webhook_id" in s for s in outer), steps  # searched by webhook, never scanned
            # ... and read as far as the claim takes: four times the rows, about four times the work
            # (reading the open webhook's 5,000 whole, it was the same work for either).
            work = [_sqlite_steps(session, claimable(now, n, {2: n})) for n in (CLAIM, 4 * CLAIM)]
            assert work[1] > 2.5 * work[0], work
        session.rollback()

    claimed, _ = DeliveryEngine(factory, Settings(), lambda: None).claim(CLAIM, {})
    assert len(claimed) == CLAIM and {c.webhook_id for c in claimed} == {2}
    with factory() as session:  # the first of each task, the oldest tasks first
        tasks = session.scalars(select(WebhookDelivery.task_id).where(WebhookDelivery.id.in_([c.id for c in claimed])))
        assert sorted(tasks) == list(range(CLAIM))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_many_open_webhooks_are_asked_in_turn(backend: str, tmp_path: Path):
    """More open webhooks than one claim asks (one subquery each): the next claims ask the others."""
    hooks = 3 * HOOKS_PER_CLAIM  # past SQLite's 500 terms in one UNION
    with throwaway(backend, tmp_path) as url:
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        now = utcnow()
        hook = {"project_id": None, "send_payload": True, "send_for_all_actions": True, "actions": [], "headers": {}}
        hook |= {"is_active": True, "provisioned": False, "created_at": now, "updated_at": now}
        delivery = {"action": "ANNOTATION_CREATED", "payload": {}, "status": "pending", "attempts": 0}
        delivery |= {"next_attempt_at": now, "created_at": now, "task_id": 1}
        with engine.begin() as conn:
            conn.execute(
                insert(Webhook.__table__),
                [
                    {**hook, "id": i, "url": f"http://127.0.0.1:9/{i}", "consecutive_failures": 0}
                    for i in range(1, hooks + 1)
                ],
            )
            conn.execute(
                insert(WebhookDelivery.__table__), [{**delivery, "webhook_id": i} for i in range(1, hooks + 1)]
            )
        claims = DeliveryEngine(make_session_factory(engine), Settings(), lambda: None)
        taken = [claims.claim(10_000, {})[0] for _ in range(3)]
        engine.dispose()
    assert [len(t) for t in taken] == [HOOKS_PER_CLAIM] * 3
    assert sorted(c.webhook_id for t in taken for c in t) == list(range(1, hooks + 1))  # each once
