"""Workflow I/O: the task handed out by /next, state history, reviews."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api_server.annotations.schemas import AnnotationPublic
from api_server.common.time import as_utc
from api_server.db.models import Review, Task, TaskTransition
from api_server.drafts.schemas import DraftPublic
from api_server.predictions.schemas import PredictionPublic


class TaskPayload(BaseModel):
    """A task as Label Studio returns it (with its predictions for pre-annotation)."""

    id: int
    data: dict[str, Any]
    meta: dict[str, Any]
    project: int
    inner_id: int
    is_labeled: bool
    overlap: int
    total_annotations: int
    cancelled_annotations: int
    total_predictions: int
    file_upload: int | None
    updated_by: int | None
    # kubelabel: the workflow state (new | in_progress | completed | accepted | rejected | skipped).
    state: str
    annotations: list[AnnotationPublic] = Field(default_factory=list)
    predictions: list[PredictionPublic] = Field(default_factory=list)
    drafts: list[DraftPublic] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


def task_payload(
    task: Task,
    *,
    annotations: list[AnnotationPublic] | None = None,
    predictions: list[PredictionPublic] | None = None,
    drafts: list[DraftPublic] | None = None,
) -> TaskPayload:
    return TaskPayload(
        id=task.id,
        data=task.data,
        meta=task.meta or {},
        project=task.project_id,
        inner_id=task.inner_id,
        is_labeled=task.is_labeled,
        overlap=task.overlap,
        total_annotations=task.total_annotations,
        cancelled_annotations=task.cancelled_annotations,
        total_predictions=task.total_predictions,
        file_upload=task.file_upload_id,
        updated_by=task.updated_by_id,
        state=task.state,
        annotations=annotations or [],
        predictions=predictions or [],
        drafts=drafts or [],
        created_at=as_utc(task.created_at),
        updated_at=as_utc(task.updated_at),
    )


class TransitionPublic(BaseModel):
    id: int
    task: int
    from_state: str
    to_state: str
    user: int | None
    comment: str
    created_at: datetime


def transition_public(row: TaskTransition) -> TransitionPublic:
    return TransitionPublic(
        id=row.id,
        task=row.task_id,
        from_state=row.from_state,
        to_state=row.to_state,
        user=row.user_id,
        comment=row.comment,
        created_at=as_utc(row.created_at),
    )


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accepted: bool
    comment: str = Field(default="", max_length=10_000)


class ReviewPublic(BaseModel):
    id: int
    annotation: int
    task: int
    reviewer: int | None
    accepted: bool
    comment: str
    created_at: datetime
    # The task's state after the review.
    task_state: str


def review_public(row: Review, task: Task) -> ReviewPublic:
    return ReviewPublic(
        id=row.id,
        annotation=row.annotation_id,
        task=task.id,
        reviewer=row.reviewer_id,
        accepted=row.accepted,
        comment=row.comment,
        created_at=as_utc(row.created_at),
        task_state=task.state,
    )


class SkipRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead_time: float | None = Field(default=None, ge=0)
    comment: str = Field(default="", max_length=10_000)
