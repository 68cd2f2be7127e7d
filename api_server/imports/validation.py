"""Turn one imported item into a task to insert, or say precisely what is wrong with it.

An item is either bare task data (`{"text": "..."}`) or Label Studio's task shape
(`{"data": {...}, "meta": {...}, "annotations": [...], "predictions": [...]}`). The task
fields Label Studio's own exports carry (id, created_at, counters, ...) are accepted and
ignored, so an export can be imported again; any other field is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from api_server.common.inputs import INT32_MAX, InputError, check_value, may_break_rules

# Task fields of Label Studio's task/export JSON that an import ignores (they are recomputed).
IGNORED_TASK_FIELDS = frozenset(
    {
        "id",
        "drafts",
        "file_upload",
        "created_at",
        "updated_at",
        "inner_id",
        "total_annotations",
        "cancelled_annotations",
        "total_predictions",
        "comment_count",
        "unresolved_comment_count",
        "last_comment_updated_at",
        "project",
        "updated_by",
        "comment_authors",
        "is_labeled",
        "overlap",
        "allow_skip",
        "precomputed_agreement",
        "storage_filename",
        "state",
        "annotators",
        "predictions_score",
    }
)
TASK_FIELDS = IGNORED_TASK_FIELDS | {"data", "meta", "annotations", "completions", "predictions"}


class RowError(ValueError):
    """What is wrong with one item (the caller adds the row number)."""


@dataclass(slots=True)
class AnnotationIn:
    result: str
    was_cancelled: bool
    ground_truth: bool
    lead_time: float | None
    completed_by: int | None


@dataclass(slots=True)
class PredictionIn:
    result: str
    score: float | None
    model_version: str


@dataclass(slots=True)
class TaskIn:
    data: dict[str, Any]
    # JSON texts as str: holding many orjson bytes objects alive is slow (allocator churn).
    data_json: str
    meta_json: str
    annotations: list[AnnotationIn] | None
    predictions: list[PredictionIn] | None


_EMPTY_META = "{}"


class TaskValidator:
    """Checks items against the label config's variables; built once per import."""

    def __init__(self, variables: set[str]) -> None:
        self.variables = tuple(sorted(variables))

    def task(self, item: Any) -> TaskIn:
        if type(item) is not dict:
            raise RowError(f"a task must be a JSON object, got {_kind(item)}")
        annotations = predictions = None
        meta_json = _EMPTY_META
        if "data" in item and type(item["data"]) is dict:
            unknown = [k for k in item if k not in TASK_FIELDS]
            if unknown:
                raise RowError(f"unknown task field(s): {', '.join(sorted(unknown))}")
            data = item["data"]
            meta = item.get("meta")
            if meta is not None:
                if type(meta) is not dict:
                    raise RowError(f"meta must be a JSON object, got {_kind(meta)}")
                meta_json = _dumps(meta)
            raw_annotations = item.get("annotations", item.get("completions"))
            if raw_annotations is not None:
                annotations = _annotations(raw_annotations)
            raw_predictions = item.get("predictions")
            if raw_predictions is not None:
                predictions = predictions_of(raw_predictions)
        else:
            data = item
        for name in self.variables:
            if name not in data:
                missing = [f"${v}" for v in self.variables if v not in data]
                raise RowError(
                    f"task data lacks {', '.join(missing)} used by the label config (data fields: {_keys(data)})"
                )
        task = TaskIn(data, _dumps(data), meta_json, annotations, predictions)
        check_limits(item, task)
        return task


def check_limits(item: Any, task: TaskIn) -> None:
    """The input limits (common.inputs) on one item; it is walked only when its JSON texts look suspect."""
    texts = [task.data_json, task.meta_json]
    if task.annotations:
        texts.extend(a.result for a in task.annotations)
    if task.predictions:
        texts.extend(p.result for p in task.predictions)
    for text in texts:
        if not text or may_break_rules(text):
            break
    else:
        return
    try:
        check_value(item, ints=False)
    except InputError as exc:
        raise RowError(str(exc)) from None
    if not all(texts):
        raise RowError("the task cannot be written as JSON")


def _dumps(value: Any) -> str:
    """JSON text, or "" when orjson refuses the value (nested past its limit): check_limits names the field."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return ""


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _keys(data: dict[str, Any]) -> str:
    keys = list(data)[:10]
    return ", ".join(keys) if keys else "none"


def _result(obj: dict[str, Any], what: str) -> str:
    result = obj.get("result", [])
    if type(result) is not list:
        raise RowError(f"{what}.result must be a list, got {_kind(result)}")
    for region in result:
        if type(region) is not dict:
            raise RowError(f"{what}.result items must be objects, got {_kind(region)}")
    return _dumps(result)


def _number(obj: dict[str, Any], key: str, what: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RowError(f"{what}.{key} must be a number, got {_kind(value)}")
    return float(value)


def _annotations(raw: Any) -> list[AnnotationIn]:
    if type(raw) is not list:
        raise RowError(f"annotations must be a list, got {_kind(raw)}")
    out = []
    for i, ann in enumerate(raw):
        what = f"annotations[{i}]"
        if type(ann) is not dict:
            raise RowError(f"{what} must be an object, got {_kind(ann)}")
        completed_by = ann.get("completed_by")
        if isinstance(completed_by, dict):
            completed_by = completed_by.get("id")
        out.append(
            AnnotationIn(
                result=_result(ann, what),
                was_cancelled=bool(ann.get("was_cancelled", False)),
                ground_truth=bool(ann.get("ground_truth", False)),
                lead_time=_number(ann, "lead_time", what),
                # An id past the users' INTEGER column names no user: the importing user is the author.
                completed_by=completed_by if type(completed_by) is int and 0 < completed_by <= INT32_MAX else None,
            )
        )
    return out


def predictions_of(raw: Any) -> list[PredictionIn]:
    if type(raw) is not list:
        raise RowError(f"predictions must be a list, got {_kind(raw)}")
    out = []
    for i, pred in enumerate(raw):
        what = f"predictions[{i}]"
        if type(pred) is not dict:
            raise RowError(f"{what} must be an object, got {_kind(pred)}")
        version = pred.get("model_version", "")
        if version is None:
            version = ""
        if not isinstance(version, str):
            version = str(version)
        out.append(PredictionIn(_result(pred, what), _number(pred, "score", what), version[:200]))
    return out
