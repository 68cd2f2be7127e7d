"""Claims cost what the deliveries they may take cost, not what waits in the table.

An endpoint down for an hour leaves tens of thousands of pending deliveries, the oldest in the
table. Claims used to walk every due row in id order and drop the backed-off webhook's at the
join: each claim's cost grew with that backlog (50 ms with 50,000 of them, every tenth of a
second). And on a table PostgreSQL had no statistics for yet (one that grew from empty within the
minute), the per-task order check compared every pending delivery of a webhook with every other
(420 ms a claim with 1,000 pending). The plans below must reach the open webhook's rows through
its index, with statistics and without.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql, sqlite

from api_server.db.base import Base, utcnow
from api_server.db.models import Webhook, WebhookDelivery
from api_server.db.session import make_engine, make_session_factory
from api_server.settings import Settings
from api_server.webhooks.engine import DeliveryEngine, claimable, open_webhooks
from tests.support.databases import throwaway

BLOCKED, OPEN, CLAIM = 20_000, 200, 64  # more open rows than a claim takes, as under load


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
        rows += [{**delivery, "webhook_id": 2, "task_id": i} for i in range(OPEN)]
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


def test_claims_never_walk_a_backed_off_backlog(engine):
    factory = make_session_factory(engine)
    with factory() as session:
        now = utcnow()
        stmt = claimable(now, CLAIM, list(open_webhooks(session, now)))
        assert stmt is not None
        if engine.dialect.name == "postgresql":
            stmt = stmt.with_for_update(of=WebhookDelivery, skip_locked=True)  # as the engine claims
            sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            plan = session.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
            plan = plan if isinstance(plan, list) else json.loads(plan)
            assert _rows_read(plan[0]["Plan"]) < 10 * OPEN  # the open webhook's rows, not the 20,000
        else:
            sql = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
            steps = [row[-1] for row in session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
            outer = [s for s in steps if "webhook_deliveries" in s and "AS" not in s.split("webhook_deliveries")[0]]
            assert outer and all("webhook_id" in s for s in outer), steps  # searched by webhook, never scanned
        session.rollback()

    claimed, _ = DeliveryEngine(factory, Settings(), lambda: None).claim(CLAIM, {})
    assert len(claimed) == CLAIM and {c.webhook_id for c in claimed} == {2}
