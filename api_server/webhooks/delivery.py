"""The `webhook.deliver` job: POST one delivery, record the attempt, retry on failure.

Success is any 2xx. Anything else (other status, timeout, connection error) counts a
failure on the delivery and the webhook (`consecutive_failures`) and re-raises so the job
queue retries with backoff, until KUBELABEL_WEBHOOK_MAX_ATTEMPTS attempts have been made.
An address the outbound-address policy refuses fails the delivery at once. The HTTP call
happens outside any database transaction. The receiver's answer body is never recorded (it
would hand whoever reads the history a window onto internal services).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import orjson
from prometheus_client import Counter
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from api_server import __version__
from api_server.common import egress
from api_server.db.base import utcnow
from api_server.db.models import Webhook, WebhookDelivery
from api_server.jobs import JobContext, PermanentJobError, job_handler
from api_server.jobs.registry import maintenance
from api_server.metrics import REGISTRY
from api_server.settings import Settings
from api_server.webhooks import signing

DELIVERIES = Counter(
    "kubelabel_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retry, failed)",
    ["outcome"],
    registry=REGISTRY,
)
_ERROR_LIMIT = 2000


class DeliveryFailed(Exception):
    pass


def render(delivery: WebhookDelivery, hook: Webhook, timestamp: int) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers of one attempt."""
    body = orjson.dumps({**delivery.payload, "delivery": {"id": delivery.id, "timestamp": timestamp}})
    headers = {**(hook.headers or {})}
    headers.update(
        {
            "Content-Type": "application/json",
            "User-Agent": f"kubelabel-webhooks/{__version__}",
            signing.EVENT_HEADER: delivery.action,
            signing.DELIVERY_HEADER: str(delivery.id),
            signing.TIMESTAMP_HEADER: str(timestamp),
        }
    )
    if hook.secret:
        headers[signing.SIGNATURE_HEADER] = signing.sign(hook.secret, body)
    return body, headers


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int | None, str | None]:
    """(status code, error) of one POST; error is None on a 2xx. Refusals raise EgressRefused."""
    limits = egress.Limits(max_seconds=timeout)
    try:
        with (
            egress.client("webhook", timeout=timeout, limits=limits) as client,
            client.stream("POST", url, content=body, headers=headers) as response,
        ):
            pass  # only the status counts; the answer is never read
    except egress.EgressRefused:
        raise
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:_ERROR_LIMIT]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


@job_handler("webhook.deliver")
def deliver(ctx: JobContext) -> None:
    delivery_id = ctx.payload.get("delivery_id")
    with ctx.session_factory() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.status != "pending":
            return  # deleted with its webhook, or already settled
        hook = session.get(Webhook, delivery.webhook_id)
        if hook is None:
            return
        if not hook.is_active:
            _settle(ctx, delivery_id, hook.id, None, "the webhook was deactivated", final=True, ok=False, count=False)
            raise PermanentJobError("the webhook was deactivated")
        body, headers = render(delivery, hook, int(time.time()))
        url = hook.url
        hook_id = hook.id
    try:
        egress.check_url(url, "webhook", unresolved_ok=True)  # a name that does not resolve is retried
        code, error = _post(url, body, headers, ctx.settings.webhook_timeout)
    except egress.EgressRefused as exc:
        _settle(ctx, delivery_id, hook_id, None, exc.reason, final=True, ok=False)
        DELIVERIES.labels("failed").inc()
        raise PermanentJobError(exc.reason) from None
    final = ctx.is_last_attempt or ctx.attempt >= ctx.settings.webhook_max_attempts
    _settle(ctx, delivery_id, hook_id, code, error, final=final, ok=error is None)
    if error is None:
        DELIVERIES.labels("delivered").inc()
        return
    DELIVERIES.labels("failed" if final else "retry").inc()
    if final:
        raise PermanentJobError(f"gave up after {ctx.attempt} attempt(s): {error}")
    raise DeliveryFailed(error)


def _settle(
    ctx: JobContext,
    delivery_id: int,
    hook_id: int,
    code: int | None,
    error: str | None,
    *,
    final: bool,
    ok: bool,
    count: bool = True,
) -> None:
    now = utcnow()
    values: dict[str, Any] = {"attempts": ctx.attempt, "last_status_code": code, "last_error": error}
    if ok:
        values.update(status="delivered", delivered_at=now, next_attempt_at=None)
    elif final:
        values.update(status="failed", next_attempt_at=None)
    else:
        values.update(next_attempt_at=ctx.retry_at)
    with ctx.session_factory() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if count:
            failures = 0 if ok else Webhook.consecutive_failures + 1
            session.execute(
                update(Webhook)
                .where(Webhook.id == hook_id)
                .values(consecutive_failures=failures)
                .execution_options(synchronize_session=False)
            )
        session.commit()


@maintenance
def purge_history(session_factory: sessionmaker[Session], settings: Settings) -> int:
    """Delete delivered and failed deliveries older than KUBELABEL_WEBHOOK_HISTORY_DAYS."""
    cutoff = utcnow() - timedelta(days=settings.webhook_history_days)
    with session_factory() as session:
        result = session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.status != "pending", WebhookDelivery.created_at < cutoff)
        )
        session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
