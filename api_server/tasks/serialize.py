"""Tasks, annotations and predictions as Label Studio's JSON, straight from query rows.

Stored JSON (data, meta, result) arrives as text and is embedded with orjson.Fragment,
never parsed; task data is parsed only to resolve storage URIs, and only when its text holds
one. Timestamps are UTC with a Z, naive ones (SQLite) included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import Response

from api_server.storages.presign import PREFIXES, resolve_task_data

Fragment = orjson.Fragment
DUMP_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=DUMP_OPTIONS)


def json_response(obj: Any, status_code: int = 200) -> Response:
    return Response(dumps(obj), status_code=status_code, media_type="application/json")


def data_text(raw: str, task_id: int, resolve: bool) -> str:
    """The task's data JSON; with `resolve`, storage URIs point at its presign endpoint (as /next serves them)."""
    if not resolve or not any(prefix in raw for prefix in PREFIXES):
        return raw
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:  # integers beyond 64 bits: served as stored
        return raw
    return dumps(resolve_task_data(data, task_id)).decode() if isinstance(data, dict) else raw


def task_dict(row: Any, resolve: bool = False) -> dict[str, Any]:
    return {
        "id": row.id,
        "data": Fragment(data_text(row.data, row.id, resolve)),
        "meta": Fragment(row.meta or "{}"),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "inner_id": row.inner_id,
        "total_annotations": row.total_annotations,
        "cancelled_annotations": row.cancelled_annotations,
        "total_predictions": row.total_predictions,
        "is_labeled": row.is_labeled,
        "overlap": row.overlap,
        "state": row.state,
        "project": row.project_id,
        "file_upload": row.file_upload_id,
        "updated_by": row.updated_by_id,
    }


def annotation_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "completed_by": row.completed_by_id,
        "result": Fragment(row.result),
        "was_cancelled": row.was_cancelled,
        "ground_truth": row.ground_truth,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "draft_created_at": row.draft_created_at,
        "lead_time": row.lead_time,
        "review_status": row.review_status,
        "last_action": row.last_action,
        "task": row.task_id,
        "project": row.project_id,
        "updated_by": row.updated_by_id,
        "parent_prediction": row.parent_prediction_id,
        "parent_annotation": row.parent_annotation_id,
    }


def prediction_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "result": Fragment(row.result),
        "score": row.score,
        "model_version": row.model_version,
        "task": row.task_id,
        "project": row.project_id,
        "ml_backend": row.ml_backend_id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def full_task_dict(
    row: Any, annotations: Sequence[Any], predictions: Sequence[Any], resolve: bool = False
) -> dict[str, Any]:
    out = task_dict(row, resolve)
    out["annotations"] = [annotation_dict(a) for a in annotations]
    out["predictions"] = [prediction_dict(p) for p in predictions]
    out["drafts"] = []
    return out
