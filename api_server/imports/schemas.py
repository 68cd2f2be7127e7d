"""Import I/O in Label Studio's shape."""

from __future__ import annotations

from pydantic import BaseModel


class ImportResponse(BaseModel):
    task_count: int
    annotation_count: int
    prediction_count: int
    # Label Studio's OpenAPI spells it with an s; both are returned.
    predictions_count: int
    duration: float
    file_upload_ids: list[int]
    could_be_tasks_list: bool
    found_formats: list[str]
    data_columns: list[str]
    task_ids: list[int] | None = None


class PredictionsImportResponse(BaseModel):
    created: int
