"""The delivery engine: pending deliveries claimed many at a time, sent over kept-alive connections.

Run by the job runner's event thread wherever jobs run (the API process, or `kubelabel worker`s).
Each step settles the attempts that finished, reads which webhooks may send (not backing off, room
in their lanes), then claims as many of their due deliveries as there are free slots, in one
statement (a backed-off webhook's backlog is never read: see `claimable`):

- due: pending, `next_attempt_at` passed, not claimed by a live lease (`locked_until`);
- in order per task: a delivery waits while an older pending one of the same webhook and task
  exists (sent, or being retried), so an ANNOTATION_UPDATED never arrives before its
  ANNOTATION_CREATED, whichever process sends them;
- bounded: at most KUBELABEL_WEBHOOK_CONCURRENCY requests in flight per process and
  KUBELABEL_WEBHOOK_ENDPOINT_CONCURRENCY to one webhook, so a slow endpoint holds only its own
  share and the others keep their pace;
- exclusive: on PostgreSQL the candidates are locked FOR UPDATE SKIP LOCKED and leased in the
  same statement; on SQLite the statement holds the write lock. Concurrent engines never claim
  one delivery twice.

A claim counts an attempt and leases the delivery (3 timeouts, at least 30 s: how long a crashed
process's claims wait to be sent again). A delivery still in its lane when no more than a timeout
and SETTLE_MARGIN of its lease are left goes back unsent (lease cleared, attempt not counted), so
a send always ends and is recorded while its lease holds, however slow the endpoint. A process that
dies after sending but before settling leaves the lease to run out: the delivery is sent again,
with the same delivery id (at least once; receivers deduplicate by `X-Kubelabel-Delivery`). When a
send fails, the deliveries still waiting in that webhook's lane are handed back unsent too.

Requests go out over kept-alive connections per endpoint origin (api_server/webhooks/sender.py:
every new connection is opened by the outbound-address policy, which resolves and checks the host,
then connects to the checked address). A refused address fails the delivery at once.

A failure (non-2xx, timeout, connection error) retries the delivery after
KUBELABEL_JOB_BACKOFF_BASE x 2^(attempt-1) seconds (capped by KUBELABEL_JOB_BACKOFF_MAX) until
KUBELABEL_WEBHOOK_MAX_ATTEMPTS, and backs the whole webhook off for the same function of its
`consecutive_failures`; its first success clears both. Requests in flight together fail together
(a stall, a restart of the receiver): a failure counts for the webhook only when its request was
claimed after the webhook's current backoff began (see `_back_off`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Select, Text, and_, cast, func, or_, select, union_all, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from api_server.common import egress
from api_server.common.time import as_utc
from api_server.db.base import utcnow
from api_server.db.models import EventOutbox, Webhook, WebhookDelivery
from api_server.db.writer import SQLITE_WRITER
from api_server.jobs.metrics import events_cpu
from api_server.jobs.queue import backoff_seconds
from api_server.settings import Settings
from api_server.webhooks import repository
from api_server.webhooks.delivery import DELIVERIES, render
from api_server.webhooks.sender import Sender, SendFailed

log = logging.getLogger(__name__)

_ERROR_LIMIT = 2000
_DRAIN_LIMIT = 64 << 10
_IDS_LOGGED = 10  # delivery ids named in a line about deliveries given up
# Deliveries a webhook may have claimed per process: this many rounds of its share of senders.
# (One step every KUBELABEL_EVENTS_GATHER_SECONDS, 0.25 s, must claim what a busy project publishes
# meanwhile.)
LANE_DEPTH = 32
# What a claim's lease keeps, past its last send's timeout, for recording the outcome.
SETTLE_MARGIN = 5.0
# Webhooks one claim asks (one subquery each; SQLite takes at most 500 in a UNION); with more
# open, each claim asks the next ones in turn.
HOOKS_PER_CLAIM = 200
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
D = WebhookDelivery
_EARLIER = aliased(WebhookDelivery)


@dataclass(frozen=True)
class _Claimed:
    id: int
    webhook_id: int
    action: str
    payload: str  # the stored JSON text
    attempts: int
    claimed_at: datetime  # see _back_off: failures of attempts claimed before a backoff began count once
    send_by: float  # time.monotonic(): not sent later (its lease could run out meanwhile), handed back


@dataclass(frozen=True)
class _Hook:
    id: int
    url: str
    headers: dict[str, str]
    secret: str | None
    is_active: bool
    failing: bool  # consecutive failures or a backoff to clear on its next success


@dataclass(frozen=True)
class _Result:
    item: _Claimed
    code: int | None
    error: str | None
    permanent: bool = False  # refused address or deactivated webhook: no retry
    counts: bool = True  # counts as the webhook's failure (not when it was deactivated)
    released: bool = False  # not sent: handed back (its webhook failed, or its lease runs short)


def in_order() -> Any:
    """The oldest pending delivery of its webhook and task (deliveries without a task have no order).

    A lookup of one index entry per candidate (the first of ix_webhook_deliveries_task_order for
    the webhook and task), whatever the planner knows: written as NOT EXISTS, PostgreSQL without
    statistics on the table (one that grew from empty within a minute) compared every pending
    delivery of the webhook with every other (80 ms a claim with 400 pending, 420 ms with 1,000)."""
    first = (
        select(func.min(_EARLIER.id))
        .where(_EARLIER.webhook_id == D.webhook_id, _EARLIER.task_id == D.task_id, _EARLIER.status == PENDING)
        .scalar_subquery()
    )
    # `<=`, not `=`: the same rows (the delivery is itself among its task's pending ones), but
    # PostgreSQL guesses an equality with a subquery true for 1 row in 200 and then reads a
    # webhook's whole backlog and sorts it rather than walk its index to the first few it takes.
    return or_(D.task_id.is_(None), D.id <= first)


def due(now: datetime) -> Any:
    return and_(
        D.status == PENDING,
        D.next_attempt_at <= now,
        or_(D.locked_until.is_(None), D.locked_until < now),
    )


def open_webhooks(session: Session, now: datetime) -> dict[int, _Hook]:
    """The webhooks that may send now (not backing off), with what their sends need: one read a claim."""
    rows = session.execute(
        select(
            Webhook.id,
            Webhook.url,
            Webhook.headers,
            Webhook.secret,
            Webhook.is_active,
            Webhook.consecutive_failures,
            Webhook.backoff_until,
        ).where(or_(Webhook.backoff_until.is_(None), Webhook.backoff_until <= now))
    )
    hooks = {}
    for r in rows:
        failing = bool(r.consecutive_failures) or r.backoff_until is not None
        hooks[r.id] = _Hook(r.id, r.url, dict(r.headers or {}), r.secret, r.is_active, failing)
    return hooks


def claimable(now: datetime, limit: int, caps: dict[int, int], lock: bool = False) -> Select[int, int] | None:
    """The oldest `limit` due deliveries, at most `caps[webhook]` of each (None: no webhook may take any).

    Each webhook's are read through its own slice of ix_webhook_deliveries_due (webhook, due time,
    id), up to its cap: a claim costs what it may take, not what waits in the table. A backed-off
    webhook is not asked at all (an endpoint down for an hour leaves the oldest tens of thousands of
    rows), and an open one's backlog is read only as far as its cap (one that comes back from an
    outage would otherwise be walked whole by every claim, delaying every other webhook's).
    `lock`: each webhook's rows are locked as they are taken, skipping those another claim holds
    (PostgreSQL)."""
    parts = []
    for webhook_id, cap in sorted(caps.items()):
        if cap <= 0:
            continue
        part = (
            select(D.id, D.webhook_id)
            .where(D.webhook_id == webhook_id, due(now), in_order())
            .order_by(D.next_attempt_at, D.id)
            .limit(cap)
        )
        parts.append((part.with_for_update(of=D, skip_locked=True) if lock else part).subquery())
    if not parts:
        return None
    # Each part a subquery of its own: a LIMIT (and a row lock) inside a UNION member needs one.
    found = union_all(*(select(p.c.id, p.c.webhook_id) for p in parts)).subquery() if len(parts) > 1 else parts[0]
    return select(found.c.id, found.c.webhook_id).order_by(found.c.id).limit(limit)


class DeliveryEngine:
    def __init__(self, session_factory: sessionmaker[Session], settings: Settings, wake: Callable[[], None]) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.wake = wake
        self.total = settings.webhook_concurrency
        self.per_endpoint = min(settings.webhook_endpoint_concurrency, self.total)
        # Per webhook: deliveries claimed and not finished (queued in its lane or being sent), the
        # lane's queue, and how many pool threads work the lane (at most the endpoint share).
        self.outstanding: dict[int, int] = defaultdict(int)
        self.lanes: dict[int, deque[tuple[_Claimed, _Hook | None]]] = defaultdict(deque)
        self.running: dict[int, int] = defaultdict(int)
        self._lock = threading.Lock()
        self.failing: set[int] = set()  # webhooks whose failure count a success must reset
        self.results: queue.SimpleQueue[_Result] = queue.SimpleQueue()
        self._found_last = False  # the last claim leased deliveries
        self._turn = 0  # where the next claim starts among the open webhooks, when there are too many for one
        self.sender = Sender("webhook", settings.webhook_timeout, _DRAIN_LIMIT)
        self.pool = ThreadPoolExecutor(self.total, thread_name_prefix="kubelabel-webhooks")
        self.lease = max(3 * settings.webhook_timeout, 30.0)
        # A delivery is sent no later than this after its claim (else handed back): its send and
        # settling then end within the lease.
        self.send_within = self.lease - settings.webhook_timeout - SETTLE_MARGIN

    # --- the step ------------------------------------------------------------------------------

    def step(self) -> bool:
        with events_cpu("settle"):
            settled = self.settle()
        with events_cpu("claim"):
            claimed = self.claim_and_send()
        return bool(settled or claimed)

    def idle(self) -> bool:
        with self._lock:
            return not any(self.outstanding.values()) and self.results.empty()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)
        self.settle()
        self.sender.close()

    # --- claiming ------------------------------------------------------------------------------

    def claim_and_send(self) -> int:
        """Claim what the lanes have room for and hand it to them: sends overlap with the next steps."""
        with self._lock:
            outstanding = dict(self.outstanding)
        free = LANE_DEPTH * self.total - sum(outstanding.values())
        if free <= 0:
            return 0
        busy = {w for w, n in outstanding.items() if n > 0}
        caps = {w: self._depth(w) - outstanding.get(w, 0) for w in busy | self.failing}
        claimed, hooks = self.claim(free, caps)
        with self._lock:
            for item in claimed:
                self.outstanding[item.webhook_id] += 1
                self.lanes[item.webhook_id].append((item, hooks.get(item.webhook_id)))
            for webhook_id in {item.webhook_id for item in claimed}:
                while (
                    self.running[webhook_id] < self.per_endpoint
                    and len(self.lanes[webhook_id]) > self.running[webhook_id]
                ):
                    self.running[webhook_id] += 1
                    self.pool.submit(self._lane, webhook_id)
        return len(claimed)

    def _depth(self, webhook_id: int) -> int:
        # A failing webhook gets one delivery at a time, a probe: its first success opens the lane.
        return 1 if webhook_id in self.failing else LANE_DEPTH * self.per_endpoint

    def claim(self, limit: int, caps: dict[int, int]) -> tuple[list[_Claimed], dict[int, _Hook]]:
        """Lease up to `limit` due deliveries, at most `caps[webhook]` (else the endpoint share) per webhook."""
        now, started = utcnow(), time.monotonic()
        with self.session_factory() as session:
            # A read first: most calls find nothing due, and must not take SQLite's write lock for
            # that (skipped while the last claim found some: more are likely due).
            if not self._found_last:
                if session.scalar(select(D.id).where(due(now)).limit(1)) is None:
                    session.commit()
                    return [], {}
                session.commit()
            postgres = session.get_bind().dialect.name == "postgresql"
            with nullcontext() if postgres else SQLITE_WRITER:
                claimed, hooks = self._claim(session, now, started + self.send_within, postgres, limit, caps)
            self._found_last = bool(claimed)
            return claimed, hooks

    def _claim(
        self, session: Session, now: datetime, send_by: float, postgres: bool, limit: int, caps: dict[int, int]
    ) -> tuple[list[_Claimed], dict[int, _Hook]]:
        hooks = open_webhooks(session, now)
        fresh = LANE_DEPTH * self.per_endpoint  # a webhook with nothing claimed here yet
        room = {w: caps.get(w, fresh) for w in hooks}
        wanted = sorted(w for w, n in room.items() if n > 0)
        if len(wanted) > HOOKS_PER_CLAIM:
            start = self._turn % len(wanted)
            wanted = (wanted[start:] + wanted[:start])[:HOOKS_PER_CLAIM]
            self._turn = start + HOOKS_PER_CLAIM
        candidates = claimable(now, limit, {w: room[w] for w in wanted}, lock=postgres)
        if candidates is None:
            session.commit()
            return [], {}
        found = candidates.subquery()
        stmt = (
            update(D)
            .where(D.id.in_(select(found.c.id)))
            .values(locked_until=now + timedelta(seconds=self.lease), attempts=D.attempts + 1)
            .returning(D.id, D.webhook_id, D.action, cast(D.payload, Text), D.attempts)
            .execution_options(synchronize_session=False)
        )
        rows = session.execute(stmt).all()
        session.commit()
        self.failing.update(w for w in {r[1] for r in rows} if hooks[w].failing)
        claimed = sorted(
            (_Claimed(r[0], r[1], r[2], r[3] or "{}", r[4], now, send_by) for r in rows), key=lambda c: c.id
        )
        return claimed, hooks

    # --- sending (pool threads) -----------------------------------------------------------------

    def _lane(self, webhook_id: int) -> None:
        """Send the lane's deliveries one after another (one of at most `per_endpoint` threads on it)."""
        while True:
            with self._lock:
                if not self.lanes[webhook_id]:
                    self.running[webhook_id] -= 1
                    return
                item, hook = self.lanes[webhook_id].popleft()
            if time.monotonic() > item.send_by:
                result = _Result(item, None, None, released=True)  # waited too long behind a slow endpoint
            else:
                try:
                    with events_cpu("send"):
                        result = self._attempt(item, hook)
                except Exception as exc:  # never lose a result: the delivery would wait for its lease
                    log.exception("webhook delivery %s: unexpected error", item.id)
                    result = _Result(item, None, f"{type(exc).__name__}: {exc}")
            self.results.put(result)
            released: list[tuple[_Claimed, _Hook | None]] = []
            with self._lock:
                self.outstanding[webhook_id] -= 1
                if result.error is not None and result.counts:
                    # The endpoint failed: what waits in its lane goes back unsent, instead of each
                    # waiting for a failure of its own (the webhook backs off; its next claims probe it).
                    released = list(self.lanes[webhook_id])
                    self.lanes[webhook_id].clear()
                    self.outstanding[webhook_id] -= len(released)
                if self.outstanding[webhook_id] <= 0:
                    del self.outstanding[webhook_id]
            for waiting, _ in released:
                self.results.put(_Result(waiting, None, None, released=True))
            self.wake()

    def _attempt(self, item: _Claimed, hook: _Hook | None) -> _Result:
        if hook is None or not hook.is_active:
            return _Result(item, None, "the webhook was deactivated", True, False)
        body, headers = render(item.id, item.action, item.payload, hook.headers, hook.secret, int(time.time()))
        try:
            code = self.sender.post(hook.url, body, headers)
        except egress.EgressRefused as exc:
            return _Result(item, None, exc.reason, permanent=True)
        except SendFailed as exc:
            return _Result(item, None, str(exc)[:_ERROR_LIMIT])
        return _Result(item, code, None if 200 <= code < 300 else f"HTTP {code}")

    # --- settling ------------------------------------------------------------------------------

    @staticmethod
    def _writing(session: Session) -> AbstractContextManager[Any]:
        return SQLITE_WRITER if session.get_bind().dialect.name == "sqlite" else nullcontext()

    def settle(self) -> int:
        """Record every finished attempt: a few statements for the whole lot."""
        results: list[_Result] = []
        while True:
            try:
                results.append(self.results.get_nowait())
            except queue.Empty:
                break
        if not results:
            return 0
        now = utcnow()
        s = self.settings
        delivered: dict[int | None, list[int]] = defaultdict(list)
        failures: list[tuple[_Result, bool]] = []
        last_outcome: dict[int, bool] = {}
        failed_claims: dict[int, datetime] = {}  # per webhook, the latest claim of a counted failure
        released = [r.item.id for r in results if r.released]
        for r in results:
            item = r.item
            if r.released:
                continue
            if r.error is None:
                delivered[r.code].append(item.id)
                last_outcome[item.webhook_id] = True
                DELIVERIES.labels("delivered").inc()
                continue
            final = r.permanent or item.attempts >= s.webhook_max_attempts
            failures.append((r, final))
            if r.counts:
                last_outcome[item.webhook_id] = False
                latest = failed_claims.get(item.webhook_id, item.claimed_at)
                failed_claims[item.webhook_id] = max(item.claimed_at, latest)
            DELIVERIES.labels("failed" if final else "retry").inc()
        with self.session_factory() as session, self._writing(session):
            for code, ids in delivered.items():
                session.execute(
                    update(D)
                    .where(D.id.in_(ids))
                    .values(
                        status=DELIVERED,
                        delivered_at=now,
                        last_status_code=code,
                        last_error=None,
                        next_attempt_at=None,
                        locked_until=None,
                    )
                    .execution_options(synchronize_session=False)
                )
            if released:
                session.execute(
                    update(D)
                    .where(D.id.in_(released))
                    .values(locked_until=None, attempts=D.attempts - 1)
                    .execution_options(synchronize_session=False)
                )
            for r, final in failures:
                values: dict[str, Any] = {"last_status_code": r.code, "last_error": r.error, "locked_until": None}
                if final:
                    values.update(status=FAILED, next_attempt_at=None)
                else:
                    delay = backoff_seconds(r.item.attempts, s.job_backoff_base, s.job_backoff_max)
                    values["next_attempt_at"] = now + timedelta(seconds=delay)
                session.execute(update(D).where(D.id == r.item.id).values(**values))
            healthy = [w for w, ok in last_outcome.items() if ok and w in self.failing]
            self.failing.difference_update(healthy)
            self.failing.update(w for w, ok in last_outcome.items() if not ok)
            if healthy:
                session.execute(
                    update(Webhook)
                    .where(
                        Webhook.id.in_(healthy),
                        or_(Webhook.consecutive_failures != 0, Webhook.backoff_until.isnot(None)),
                    )
                    .values(consecutive_failures=0, backoff_until=None)
                    .execution_options(synchronize_session=False)
                )
            for webhook_id, ok in last_outcome.items():
                if not ok:
                    self._back_off(session, webhook_id, failed_claims[webhook_id], now)
            session.commit()
        _log_given_up([r for r, final in failures if final])
        return len(results)

    def _back_off(self, session: Session, webhook_id: int, claimed_at: datetime, now: datetime) -> None:
        """Count a failure of the webhook and back it off for backoff_seconds(its count).

        Only when the failed request was claimed after the webhook's current backoff began: the
        requests in flight when an endpoint stalls fail together, and eight concurrent timeouts
        are one finding (a 5 s backoff), not eight (640 s, which left a receiver that stalled for
        two seconds without deliveries for ten minutes). A dead endpoint still counts one failure
        per probe, so its backoff doubles each time."""
        s = self.settings
        row = session.execute(
            select(Webhook.consecutive_failures, Webhook.backoff_until).where(Webhook.id == webhook_id)
        ).one_or_none()
        if row is None:
            return
        count, until = row
        if until is not None and count:
            began = as_utc(until) - timedelta(seconds=backoff_seconds(count, s.job_backoff_base, s.job_backoff_max))
            if claimed_at < began:
                return
        delay = backoff_seconds(count + 1, s.job_backoff_base, s.job_backoff_max)
        session.execute(
            update(Webhook)
            .where(Webhook.id == webhook_id, Webhook.consecutive_failures == count)  # another process counted it
            .values(consecutive_failures=count + 1, backoff_until=now + timedelta(seconds=delay))
            .execution_options(synchronize_session=False)
        )


def _log_given_up(results: list[_Result]) -> None:
    """One line per webhook and reason: a webhook deactivated under load gives up a lane's worth at once."""
    given_up: dict[tuple[int, str | None], list[_Result]] = defaultdict(list)
    for r in results:
        given_up[r.item.webhook_id, r.error].append(r)
    for (webhook_id, error), rs in given_up.items():
        ids = sorted(r.item.id for r in rs)
        more = len(ids) - _IDS_LOGGED
        shown = ", ".join(map(str, ids[:_IDS_LOGGED])) + (f" and {more} more" if more > 0 else "")
        attempts = sorted({r.item.attempts for r in rs})
        log.warning(
            "webhook %s: %s delivery(ies) failed for good after %s attempt(s) (%s): %s",
            webhook_id,
            len(ids),
            attempts[0] if len(attempts) == 1 else f"{attempts[0]}-{attempts[-1]}",
            shown,
            error,
        )


class BacklogMetrics(Collector):
    """Read from the tables at scrape time: what waits per webhook, and what waits to be fanned out."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[Any]:
        backlog = GaugeMetricFamily(
            "kubelabel_webhook_backlog", "Deliveries not sent yet, per webhook and state", labels=["webhook", "state"]
        )
        lag = GaugeMetricFamily(
            "kubelabel_webhook_lag_seconds",
            "Age of the oldest delivery not sent yet, per webhook (0: none waits)",
            labels=["webhook"],
        )
        outbox = GaugeMetricFamily("kubelabel_events_outbox", "Events published and not fanned out yet")
        outbox_lag = GaugeMetricFamily(
            "kubelabel_events_outbox_lag_seconds", "Age of the oldest event not fanned out yet (0: none waits)"
        )
        try:
            now = utcnow()
            with self.session_factory() as session:
                waiting = repository.backlog(session)
                hooks = list(session.scalars(select(Webhook.id).order_by(Webhook.id)))
                events_waiting, oldest_event = session.execute(
                    select(func.count(), func.min(EventOutbox.created_at))
                ).one()
                session.commit()
            for hook_id in hooks:
                b = waiting.get(hook_id, repository.Backlog())
                backlog.add_metric([str(hook_id), "pending"], b.pending)
                backlog.add_metric([str(hook_id), "failing"], b.failing)
                lag.add_metric([str(hook_id)], _age(now, b.oldest))
            outbox.add_metric([], int(events_waiting))
            outbox_lag.add_metric([], _age(now, oldest_event))
        except Exception:  # a scrape must not fail because the database hiccuped
            log.exception("could not read the webhook backlog")
        yield from (backlog, lag, outbox, outbox_lag)


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - as_utc(since)).total_seconds()) if since is not None else 0.0
