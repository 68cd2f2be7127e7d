"""Webhook endpoints (Label Studio paths) and delivery history."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response

from api_server.common.pagination import Page, PageParams, page_params
from api_server.common.routing import DualSlashRouter
from api_server.common.time import as_utc
from api_server.db.models import WebhookDelivery
from api_server.deps import CurrentUser, SessionDep
from api_server.webhooks import actions, service
from api_server.webhooks.schemas import (
    DeliveryPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhookUpdate,
)

router = DualSlashRouter(prefix="/api/webhooks", tags=["webhooks"])


@router.get("/", response_model=list[WebhookPublic])
def list_webhooks(
    session: SessionDep,
    user: CurrentUser,
    project: Annotated[int | None, Query(description="only this project's webhooks")] = None,
) -> list[WebhookPublic]:
    """Webhooks the caller manages (admins: all), optionally of one project."""
    return [service.to_public(h) for h in service.list_webhooks(session, user, project)]


@router.post("/", response_model=WebhookCreated, status_code=201, response_model_exclude_none=False)
def create_webhook(body: WebhookCreate, session: SessionDep, user: CurrentUser) -> WebhookCreated:
    """Create a webhook (project managers; organisation-wide ones: admins).

    Without a `secret`, one is generated and returned in this response only: deliveries are
    always signed (`X-Kubelabel-Signature: sha256=<HMAC-SHA256 of the body>`).
    """
    hook, generated = service.create_webhook(session, user, body)
    return WebhookCreated(**service.to_public(hook).model_dump(), secret=generated)


@router.get("/info/")
def info(
    organization_only: Annotated[bool | None, Query(alias="organization-only")] = None,
) -> dict[str, dict[str, object]]:
    """The events a webhook can subscribe to (Label Studio's catalogue)."""
    return actions.catalogue(organization_only)


@router.get("/{webhook_id}/", response_model=WebhookPublic)
def get_webhook(webhook_id: int, session: SessionDep, user: CurrentUser) -> WebhookPublic:
    return service.to_public(service.get_webhook(session, user, webhook_id))


@router.patch("/{webhook_id}/", response_model=WebhookPublic)
@router.put("/{webhook_id}/", response_model=WebhookPublic, include_in_schema=False)
def update_webhook(webhook_id: int, body: WebhookUpdate, session: SessionDep, user: CurrentUser) -> WebhookPublic:
    """Change a webhook; a new `secret` rotates the signing key (it is never returned)."""
    return service.to_public(service.update_webhook(session, user, webhook_id, body))


@router.delete("/{webhook_id}/", status_code=204)
def delete_webhook(webhook_id: int, session: SessionDep, user: CurrentUser) -> Response:
    service.delete_webhook(session, user, webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries/", response_model=Page[DeliveryPublic])
def deliveries(
    webhook_id: int,
    session: SessionDep,
    user: CurrentUser,
    page: Annotated[PageParams, Depends(page_params)],
    include_payload: Annotated[bool, Query(description="include each delivery's payload")] = False,
) -> Page[DeliveryPublic]:
    """Delivery history, newest first: status (pending, delivered, failed), attempts, last response."""
    total, rows = service.deliveries(session, user, webhook_id, offset=page.offset, limit=page.page_size)
    return Page(count=total, results=[_delivery(d, include_payload) for d in rows])


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver/", response_model=DeliveryPublic, status_code=201)
def redeliver(webhook_id: int, delivery_id: int, session: SessionDep, user: CurrentUser) -> DeliveryPublic:
    """Queue a past delivery's payload again (a new delivery, signed afresh)."""
    return _delivery(service.redeliver(session, user, webhook_id, delivery_id), include_payload=False)


def _delivery(d: WebhookDelivery, include_payload: bool) -> DeliveryPublic:
    return DeliveryPublic(
        id=d.id,
        webhook=d.webhook_id,
        action=d.action,
        status=d.status,
        attempts=d.attempts,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        next_attempt_at=as_utc(d.next_attempt_at),
        delivered_at=as_utc(d.delivered_at),
        created_at=as_utc(d.created_at),
        payload=d.payload if include_payload else None,
    )
