"""Webhook I/O in Label Studio's field names, plus the write-only `secret` and delivery history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api_server.webhooks.actions import ACTIONS


def _known_actions(value: list[str] | None) -> list[str] | None:
    if value is None:
        return value
    unknown = [a for a in value if a not in ACTIONS]
    if unknown:
        raise ValueError(f"unknown action(s) {', '.join(unknown)}; see /api/webhooks/info/")
    return list(dict.fromkeys(value))


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    send_payload: bool | None = None
    send_for_all_actions: bool | None = None
    actions: list[str] | None = None
    headers: dict[str, str] | None = None
    is_active: bool | None = None
    # Write-only HMAC key; never returned.
    secret: str | None = Field(default=None, min_length=16, max_length=500)

    _actions = field_validator("actions")(_known_actions)


class WebhookCreate(WebhookUpdate):
    url: str = Field(min_length=1, max_length=2048)
    project: int | None = None


class WebhookPublic(BaseModel):
    id: int
    organization: int = 1
    project: int | None
    url: str
    send_payload: bool
    send_for_all_actions: bool
    actions: list[str]
    # Write-only values: each header's name with "********" (sent back as is, it keeps the stored value).
    headers: dict[str, str]
    is_active: bool
    has_secret: bool
    consecutive_failures: int
    # Deliveries not sent yet, and of those the ones whose last attempt failed (the backlog).
    pending: int = 0
    failing: int = 0
    # A failing endpoint is not called again before this time (its own backoff).
    backoff_until: datetime | None = None
    # Declared in the operator's project file (changes made through the API are reset at restart).
    provisioned: bool = False
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookPublic):
    # Present only when kubelabel generated the secret: the one time it is shown.
    secret: str | None = None


class DeliveryPublic(BaseModel):
    id: int
    webhook: int
    action: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any] | None = None
