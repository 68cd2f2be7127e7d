"""A webhook's lane: what a failed send leaves waiting goes back unsent.

A claim leases up to LANE_DEPTH rounds of a webhook's senders at once (a busy project publishes
hundreds of events between two claims). When the endpoint fails, the deliveries still waiting in
its lane are handed back (lease cleared, attempt not counted) instead of each being tried and
failing in turn: the webhook backs off, and its next claims take only a probe's share.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert, select

from api_server.common.egress import Policy
from api_server.db.base import Base, utcnow
from api_server.db.models import Webhook, WebhookDelivery
from api_server.db.session import make_engine, make_session_factory
from api_server.settings import Settings
from api_server.webhooks.engine import LANE_DEPTH, DeliveryEngine
from api_server.webhooks.sender import Sender
from tests.support.databases import throwaway
from tests.support.waiting import wait_until
from tests.support.webhook_receiver import WebhookReceiver

PENDING = LANE_DEPTH + 8  # more than one claim takes for a webhook with one sender


@pytest.fixture(params=["sqlite", "postgres"])
def factory(request: pytest.FixtureRequest, tmp_path: Path):
    with throwaway(request.param, tmp_path) as url:
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        yield make_session_factory(engine)
        engine.dispose()


def test_a_failed_send_hands_the_lanes_waiting_deliveries_back(factory):
    now = utcnow()
    with WebhookReceiver(fail_first=10**9, fail_status=500) as receiver, factory() as session:
        session.execute(
            insert(Webhook.__table__),
            [
                {
                    "id": 1,
                    "project_id": None,
                    "url": receiver.url,
                    "send_payload": True,
                    "send_for_all_actions": True,
                    "actions": [],
                    "headers": {},
                    "is_active": True,
                    "provisioned": False,
                    "consecutive_failures": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        delivery = {"webhook_id": 1, "action": "ANNOTATION_CREATED", "payload": {}, "status": "pending"}
        delivery |= {"attempts": 0, "next_attempt_at": now, "created_at": now}
        session.execute(insert(WebhookDelivery.__table__), [delivery] * PENDING)
        session.commit()

        settings = Settings(KUBELABEL_WEBHOOK_ENDPOINT_CONCURRENCY=1)
        engine = DeliveryEngine(factory, settings, lambda: None)
        engine.sender = Sender("webhook", settings.webhook_timeout, 1024, policy=Policy.parse("webhook:loopback"))
        try:
            assert engine.claim_and_send() == LANE_DEPTH  # the lane's whole depth, for its one sender
            wait_until(lambda: not any(engine.outstanding.values()), "the lane is empty", 10)
            engine.settle()
        finally:
            engine.close()

        rows = list(session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id)).scalars())
        hook = session.get(Webhook, 1)
        # One request went out and failed; the rest of the lane went back unsent, as never claimed.
        assert len(receiver.received) == 1
        tried = [r for r in rows if r.attempts]
        assert len(tried) == 1 and tried[0].last_error == "HTTP 500" and tried[0].next_attempt_at > now
        assert all(r.status == "pending" and r.locked_until is None for r in rows)
        assert hook is not None and hook.consecutive_failures == 1 and hook.backoff_until is not None
