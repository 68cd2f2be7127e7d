"""Annotation I/O in Label Studio's field names."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api_server.common import ls_json
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
    return ls_json.annotation_state(row.review_status, row.was_cancelled)


# The API's fields in Label Studio's shape (common.ls_json; AnnotationPublic declares the same keys);
# created_username is the caller's to give.
_PUBLIC = ls_json.writer(
    ls_json.ANNOTATION,
    ls_json.API,
    {"ts": as_utc},
    {"created_username": lambda row: "", "created_ago": lambda row: ""},
)


def to_public(row: Annotation, username: str = "") -> AnnotationPublic:
    fields = _PUBLIC(row)
    fields["created_username"] = username
    return AnnotationPublic(**fields)


def _ts_json(value: datetime | None) -> str | None:
    """A timestamp as AnnotationPublic's JSON has it (pydantic's form: UTC, ending in `Z`)."""
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")


# The same fields as JSON values, in AnnotationPublic's order, without building the model: event
# fan-outs turn thousands of stored annotations a second into this form (the model cost 5x more).
_PUBLIC_JSON = ls_json.writer(
    ls_json.ANNOTATION,
    ls_json.API,
    {"ts": _ts_json, "float": lambda v: None if v is None else float(v)},
    {"created_username": lambda row: "", "created_ago": lambda row: ""},
)
_ORDER = tuple(AnnotationPublic.model_fields)  # the same keys (tests/unit/api/test_ls_json.py)


# An annotation stored in the event outbox as its row's values, its author's name under
# STORED_AUTHOR: written by the labeling loop's PostgreSQL function (kubelabel_submit_checked),
# read back by workflow/outbox.py in Python and by webhooks/bulk.py in SQL.
STORED_KIND = "annotation_public"
STORED_AUTHOR = "$username"


def to_public_json(row: Annotation, username: str = "") -> dict[str, Any]:
    """`to_public(row, username).model_dump(mode="json")`, built directly."""
    fields = _PUBLIC_JSON(row)
    fields["created_username"] = username
    return {key: fields[key] for key in _ORDER}
