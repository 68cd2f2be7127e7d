"""Annotation I/O in Label Studio's field names."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api_server.common.time import as_utc
from api_server.db.models import Annotation


class AnnotationCreate(BaseModel):
    """POST /api/tasks/{id}/annotations/ (fields Label Studio clients send; `task`/`project` are implied)."""

    model_config = ConfigDict(extra="forbid")

    result: list[Any] = Field(default_factory=list)
    was_cancelled: bool = False
    ground_truth: bool = False
    lead_time: float | None = Field(default=None, ge=0)
    completed_by: int | None = None
    updated_by: int | None = None
    task: int | None = None
    project: int | None = None
    draft_id: int | None = None
    parent_prediction: int | None = None
    parent_annotation: int | None = None
    draft_created_at: datetime | None = None
    import_id: int | None = None
    last_action: str | None = None


class AnnotationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: list[Any] | None = None
    was_cancelled: bool | None = None
    ground_truth: bool | None = None
    lead_time: float | None = Field(default=None, ge=0)
    completed_by: int | None = None
    updated_by: int | None = None
    task: int | None = None
    project: int | None = None
    draft_id: int | None = None
    last_action: str | None = None


class AnnotationPublic(BaseModel):
    id: int
    result: list[Any]
    task: int
    project: int
    completed_by: int | None
    created_username: str = ""
    created_ago: str = ""
    was_cancelled: bool
    ground_truth: bool
    lead_time: float | None
    draft_created_at: datetime | None
    parent_prediction: int | None
    parent_annotation: int | None
    last_action: str | None
    updated_by: int | None
    # kubelabel: the review verdict (accepted | rejected | null when not reviewed).
    review_status: str | None
    # submitted | skipped | accepted | rejected
    state: str
    import_id: int | None
    bulk_created: bool
    created_at: datetime
    updated_at: datetime


def annotation_state(row: Annotation) -> str:
    if row.review_status:
        return row.review_status
    return "skipped" if row.was_cancelled else "submitted"


def to_public(row: Annotation, username: str = "") -> AnnotationPublic:
    return AnnotationPublic(
        id=row.id,
        result=row.result,
        task=row.task_id,
        project=row.project_id,
        completed_by=row.completed_by_id,
        created_username=username,
        was_cancelled=row.was_cancelled,
        ground_truth=row.ground_truth,
        lead_time=row.lead_time,
        draft_created_at=as_utc(row.draft_created_at),
        parent_prediction=row.parent_prediction_id,
        parent_annotation=row.parent_annotation_id,
        last_action=row.last_action,
        updated_by=row.updated_by_id,
        review_status=row.review_status,
        state=annotation_state(row),
        import_id=row.import_id,
        bulk_created=row.bulk_created,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )
