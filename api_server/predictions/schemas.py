"""Prediction I/O in Label Studio's field names."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api_server.common.time import as_utc
from api_server.db.models import Prediction


class PredictionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: int
    result: list[Any] = Field(default_factory=list)
    score: float | None = None
    model_version: str | None = Field(default=None, max_length=200)
    project: int | None = None
    # Accepted for Label Studio client compatibility; not stored.
    cluster: int | None = None
    mislabeling: float | None = None
    neighbors: Any = None
    model: int | None = None
    model_run: int | None = None


class PredictionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: int | None = None
    result: list[Any] | None = None
    score: float | None = None
    model_version: str | None = Field(default=None, max_length=200)
    project: int | None = None
    cluster: int | None = None
    mislabeling: float | None = None
    neighbors: Any = None
    model: int | None = None
    model_run: int | None = None


class PredictionPublic(BaseModel):
    id: int
    task: int
    project: int
    result: list[Any]
    score: float | None
    model_version: str
    model: int | None = None
    model_run: int | None = None
    cluster: int | None = None
    neighbors: Any = None
    mislabeling: float = 0.0
    created_ago: str = ""
    created_at: datetime
    updated_at: datetime


def to_public(row: Prediction) -> PredictionPublic:
    return PredictionPublic(
        id=row.id,
        task=row.task_id,
        project=row.project_id,
        result=row.result,
        score=row.score,
        model_version=row.model_version,
        model=row.ml_backend_id,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )
