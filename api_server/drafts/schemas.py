"""Draft I/O in Label Studio's field names (its AnnotationDraft)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api_server.common.time import as_utc
from api_server.db.models import Draft


class DraftWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: list[Any] | None = None
    lead_time: float | None = Field(default=None, ge=0)
    was_postponed: bool | None = None
    # Accepted for Label Studio client compatibility (implied by the path or the caller).
    task: int | None = None
    annotation: int | None = None
    user: int | None = None
    draft_id: int | None = None
    project: int | None = None
    started_at: datetime | None = None


class DraftPublic(BaseModel):
    id: int
    task: int
    annotation: int | None
    user: int | None
    created_username: str = ""
    created_ago: str = ""
    result: list[Any]
    lead_time: float | None
    was_postponed: bool
    import_id: int | None = None
    created_at: datetime
    updated_at: datetime


def to_public(row: Draft, username: str = "") -> DraftPublic:
    return DraftPublic(
        id=row.id,
        task=row.task_id,
        annotation=row.annotation_id,
        user=row.user_id,
        created_username=username,
        result=row.result,
        lead_time=row.lead_time,
        was_postponed=row.was_postponed,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )
