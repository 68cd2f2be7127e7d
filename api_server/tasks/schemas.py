"""Task request bodies (Label Studio field names). Responses are built in serialize.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _LabelStudioTaskExtras(BaseModel):
    """Fields Label Studio clients send along (the SDK's tasks.create/update); accepted, not stored."""

    allow_skip: bool | None = None
    cancelled_annotations: int | None = None
    comment_authors: list[int] | None = None
    comment_count: int | None = None
    file_upload: int | None = None
    inner_id: int | None = None
    is_labeled: bool | None = None
    last_comment_updated_at: datetime | None = None
    overlap: int | None = None
    total_annotations: int | None = None
    total_predictions: int | None = None
    unresolved_comment_count: int | None = None
    updated_by: int | None = None


class TaskCreate(_LabelStudioTaskExtras):
    model_config = ConfigDict(extra="forbid")

    project: int
    data: dict[str, Any]
    meta: dict[str, Any] | None = None


class TaskUpdate(_LabelStudioTaskExtras):
    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None
    project: int | None = None


class BulkDelete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] | None = Field(default=None, description="tasks to delete; all tasks of the project when absent")


class TaskPublic(BaseModel):
    """Documentation of the task shape (responses are serialised directly; keys: common.ls_json)."""

    id: int
    data: dict[str, Any]
    meta: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    inner_id: int
    total_annotations: int
    cancelled_annotations: int
    total_predictions: int
    is_labeled: bool
    overlap: int
    state: str
    project: int
    file_upload: int | None
    updated_by: int | None
    annotations: list[dict[str, Any]] | None = None
    predictions: list[dict[str, Any]] | None = None
    drafts: list[dict[str, Any]] | None = None


class TaskList(BaseModel):
    tasks: list[TaskPublic]
    total: int
    total_annotations: int
    total_predictions: int
