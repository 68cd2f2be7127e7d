"""A webhook's lane: what cannot be sent in time, or after a failure, goes back unsent; and a
stalled endpoint's concurrent failures back the webhook off once.

A claim leases up to LANE_DEPTH rounds of a webhook's senders at once (a busy project publishes
hundreds of events between two claims). When the endpoint fails, the deliveries still waiting in
its lane are handed back (lease cleared, attempt not counted) instead of each being tried and
failing in turn: the webhook backs off, and its next claims take only a probe's share. A delivery
that waited in the lane until its lease ran short is handed back the same way, never sent late.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from api_server.common.egress import Policy
from api_server.common.time import as_utc
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


def add_webhook(session: Session, url: str, deliveries: int) -> None:
    """Webhook 1 (every action, healthy) at `url`, with `deliveries` pending deliveries due now."""
    now = utcnow()
    hook = {"id": 1, "project_id": None, "url": url, "send_payload": True, "send_for_all_actions": True}
    hook |= {"actions": [], "headers": {}, "is_active": True, "provisioned": False, "consecutive_failures": 0}
    session.execute(insert(Webhook.__table__), [hook | {"created_at": now, "updated_at": now}])
    delivery = {"webhook_id": 1, "action": "ANNOTATION_CREATED", "payload": {}, "status": "pending"}
    delivery |= {"attempts": 0, "next_attempt_at": now, "created_at": now}
    session.execute(insert(WebhookDelivery.__table__), [delivery] * deliveries)
    session.commit()


def delivery_engine(factory: sessionmaker[Session], **settings: object) -> DeliveryEngine:
    engine = DeliveryEngine(factory, Settings(**settings), lambda: None)
    timeout = engine.settings.webhook_timeout
    engine.sender = Sender("webhook", timeout, 1024, policy=Policy.parse("webhook:loopback"))
    return engine


def drain(engine: DeliveryEngine) -> None:
    """Wait until nothing is claimed or being sent, then record every outcome."""
    wait_until(lambda: not any(engine.outstanding.values()), "the lanes are empty", 20)
    engine.settle()


def test_a_failed_send_hands_the_lanes_waiting_deliveries_back(factory):
    now = utcnow()
    with WebhookReceiver(fail_first=10**9, fail_status=500) as receiver, factory() as session:
        add_webhook(session, receiver.url, PENDING)
        engine = delivery_engine(factory, KUBELABEL_WEBHOOK_ENDPOINT_CONCURRENCY=1)
        try:
            assert engine.claim_and_send() == LANE_DEPTH  # the lane's whole depth, for its one sender
            drain(engine)
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


def test_a_delivery_that_waited_too_long_in_the_lane_goes_back_unsent(factory):
    """Behind a slow endpoint, what would be sent too late in its lease is handed back, not sent."""
    with WebhookReceiver(delay=1.0) as receiver, factory() as session:
        add_webhook(session, receiver.url, 4)
        engine = delivery_engine(factory, KUBELABEL_WEBHOOK_ENDPOINT_CONCURRENCY=1)
        engine.send_within = 1.5  # one answer takes 1 s: the third is due to start after 2 s
        try:
            claimed_at = utcnow()
            assert engine.claim_and_send() == 4
            leases = session.scalars(select(WebhookDelivery.locked_until)).all()
            session.commit()
            # A crashed process's claims are sent again after 3 timeouts (30 s), not after the lane's depth.
            assert all(as_utc(lease) - claimed_at < timedelta(seconds=31) for lease in leases)
            drain(engine)
        finally:
            engine.close()

        rows = list(session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id)).scalars())
        sent = [r for r in rows if r.status == "delivered"]
        back = [r for r in rows if r.status == "pending"]
        assert 1 <= len(sent) == len(receiver.received) <= 2 and len(back) >= 2
        assert all(r.attempts == 1 and r.last_status_code == 200 for r in sent)
        assert all(r.attempts == 0 and r.locked_until is None for r in back)  # as never claimed
        assert [r.id for r in sent] == [r.id for r in rows[: len(sent)]]  # in order: the oldest went out


def test_requests_that_fail_together_back_the_webhook_off_once(factory):
    """Eight requests in flight when the endpoint stalls fail together: one failure of the webhook
    (a 0.2 s backoff here), not eight (0.2 x 2^7 s). After the backoff one probe goes out; its failure
    counts again."""
    with WebhookReceiver(fail_first=10**9, fail_status=503, delay=0.3) as receiver, factory() as session:
        add_webhook(session, receiver.url, 8)
        engine = delivery_engine(factory, KUBELABEL_WEBHOOK_ENDPOINT_CONCURRENCY=8, KUBELABEL_JOB_BACKOFF_BASE=0.2)
        try:
            assert engine.claim_and_send() == 8
            wait_until(lambda: not any(engine.outstanding.values()), "the lane is empty", 20)
            outcomes = []
            while not engine.results.empty():
                outcomes.append(engine.results.get_nowait())
            assert len(outcomes) == 8
            for outcome in outcomes:  # recorded one at a time, as when they straggle in
                engine.results.put(outcome)
                engine.settle()
            hook = session.get(Webhook, 1)
            assert hook is not None and len(receiver.received) == 8
            assert hook.consecutive_failures == 1
            assert hook.backoff_until is not None and as_utc(hook.backoff_until) - utcnow() < timedelta(seconds=0.3)
            # After the backoff (every delivery due again), one probe, and its failure is the second.
            session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow()))
            session.commit()
            wait_until(lambda: utcnow() > as_utc(hook.backoff_until), "the backoff ends", 5)
            assert engine.claim_and_send() == 1
            drain(engine)
            session.expire_all()
            hook = session.get(Webhook, 1)
            assert hook is not None and hook.consecutive_failures == 2 and len(receiver.received) == 9
        finally:
            engine.close()


def test_deliveries_of_a_deactivated_webhook_fail_for_good_in_one_log_line(factory, caplog):
    """Deactivated with a lane's worth claimed: each fails without a request, and the log says so once."""
    with WebhookReceiver() as receiver, factory() as session:
        add_webhook(session, receiver.url, 12)
        session.execute(update(Webhook).values(is_active=False))
        session.commit()
        engine = delivery_engine(factory)
        try:
            with caplog.at_level("WARNING", logger="api_server.webhooks.engine"):
                assert engine.claim_and_send() == 12
                drain(engine)
        finally:
            engine.close()

        rows = list(session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id)).scalars())
        assert not receiver.received
        assert all(r.status == "failed" and r.last_error == "the webhook was deactivated" for r in rows)
        lines = [r.getMessage() for r in caplog.records if "failed for good" in r.getMessage()]
        ids = [r.id for r in rows]
        assert lines == [
            f"webhook 1: 12 delivery(ies) failed for good after 1 attempt(s)"
            f" ({', '.join(map(str, ids[:10]))} and 2 more): the webhook was deactivated"
        ]
