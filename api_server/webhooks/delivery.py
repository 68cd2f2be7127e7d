"""What a delivery sends (body, headers, signature), and the upkeep of the delivery history.

The delivery engine (api_server/webhooks/engine.py) claims and sends pending deliveries. The
`webhook.deliver` job kind is kept only so that jobs queued before it (one job per delivery)
finish harmlessly: the engine sends their deliveries.
"""

from __future__ import annotations

from datetime import timedelta

import orjson
from prometheus_client import Counter
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from api_server import __version__
from api_server.db.base import utcnow
from api_server.db.models import WebhookDelivery
from api_server.jobs import JobContext
from api_server.metrics import REGISTRY
from api_server.settings import Settings
from api_server.webhooks import signing

# The job kind of the engine's predecessor (one job per delivery); see legacy_deliver.
LEGACY_KIND = "webhook.deliver"

DELIVERIES = Counter(
    "kubelabel_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retry, failed)",
    ["outcome"],
    registry=REGISTRY,
)

WRITTEN = Counter(
    "kubelabel_webhook_deliveries_written_total",
    "Deliveries written, by how (submit: with their submission, by the labeling loop's statement; the"
    " fan-out's: sql, built by PostgreSQL in one statement; python, per event)",
    ["path"],
    registry=REGISTRY,
)


def render(
    delivery_id: int,
    action: str,
    payload: str,
    custom_headers: dict[str, str],
    secret: str | None,
    timestamp: int,
) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers of one attempt.

    `payload` is the stored JSON object's text: the `delivery` member is written into it, not
    parsed and encoded again (payloads carry the project and the task, and a busy project sends
    thousands a second)."""
    stored = payload.strip()  # a JSON object the fan-out built: it never has a `delivery` member
    if not (stored.startswith("{") and stored.endswith("}")):
        raise ValueError(f"delivery {delivery_id}: the stored payload is not a JSON object")
    delivery = orjson.dumps({"id": delivery_id, "timestamp": timestamp}).decode()
    body = f'{stored[:-1].rstrip()}{"," if stored[1:-1].strip() else ""}"delivery":{delivery}}}'.encode()
    headers = {**custom_headers}
    headers.update(
        {
            "Content-Type": "application/json",
            "User-Agent": f"kubelabel-webhooks/{__version__}",
            signing.EVENT_HEADER: action,
            signing.DELIVERY_HEADER: str(delivery_id),
            signing.TIMESTAMP_HEADER: str(timestamp),
        }
    )
    if secret:
        headers[signing.SIGNATURE_HEADER] = signing.sign(secret, body)
    return body, headers


def legacy_deliver(ctx: JobContext) -> None:
    """Jobs of the engine before this one: their deliveries are pending rows the engine sends."""


def purge_history(session_factory: sessionmaker[Session], settings: Settings) -> int:
    """Hourly upkeep: delete delivered and failed deliveries older than KUBELABEL_WEBHOOK_HISTORY_DAYS."""
    cutoff = utcnow() - timedelta(days=settings.webhook_history_days)
    with session_factory() as session:
        result = session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.status != "pending", WebhookDelivery.created_at < cutoff)
        )
        session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
