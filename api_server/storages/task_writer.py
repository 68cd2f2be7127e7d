"""Create task rows for a sync batch (with their annotations and predictions), in bulk.

One INSERT ... RETURNING for the tasks of a batch, so the ids come back in input order and
the storage links can be written in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from api_server.db.base import utcnow
from api_server.db.models import Annotation, Prediction, Project, Task
from api_server.tasks import counters


def create_tasks(session: Session, project_id: int, tasks: list[dict[str, Any]]) -> list[int]:
    """Insert `tasks` (Label Studio task dicts) into the project; returns their ids in order."""
    if not tasks:
        return []
    project = session.get(Project, project_id)
    overlap = project.maximum_annotations if project is not None else 1
    next_inner = (session.scalar(select(func.max(Task.inner_id)).where(Task.project_id == project_id)) or 0) + 1
    now = utcnow()
    rows = [
        {
            "project_id": project_id,
            "inner_id": next_inner + i,
            "data": task["data"],
            "meta": task.get("meta") or {},
            "overlap": overlap,
            "created_at": now,
            "updated_at": now,
        }
        for i, task in enumerate(tasks)
    ]
    ids = list(session.scalars(insert(Task).returning(Task.id, sort_by_parameter_order=True), rows))
    annotations: list[dict[str, Any]] = []
    predictions: list[dict[str, Any]] = []
    for task_id, task in zip(ids, tasks, strict=True):
        for ann in task.get("annotations") or ():
            annotations.append(
                {
                    "task_id": task_id,
                    "project_id": project_id,
                    "result": ann.get("result") or [],
                    "was_cancelled": bool(ann.get("was_cancelled", False)),
                    "ground_truth": bool(ann.get("ground_truth", False)),
                    "lead_time": ann.get("lead_time"),
                    "bulk_created": True,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        for pred in task.get("predictions") or ():
            predictions.append(
                {
                    "task_id": task_id,
                    "project_id": project_id,
                    "result": pred.get("result") or [],
                    "score": pred.get("score"),
                    "model_version": str(pred.get("model_version") or ""),
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if annotations:
        session.execute(insert(Annotation), annotations)
    if predictions:
        session.execute(insert(Prediction), predictions)
    if annotations or predictions:
        counters.refresh(session, [row["task_id"] for row in annotations + predictions])
    return ids
