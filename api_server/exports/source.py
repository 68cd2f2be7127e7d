"""Tasks of an export in keyset-paginated batches, with their annotations and predictions.

Each batch is one task query (`id > last ORDER BY id LIMIT n`) plus one query for the
annotations and one for the predictions of that id range, so memory stays flat whatever
the project's size and the queries never degrade with depth (no OFFSET).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, func, select, text
from sqlalchemy.orm import Session

from api_server.db.models import Annotation, Prediction, Task
from api_server.tasks.repository import ANNOTATION_COLUMNS, PREDICTION_COLUMNS, TASK_COLUMNS

BATCH = 5000


@dataclass(frozen=True)
class Selection:
    project_id: int
    annotated_only: bool
    ids: Sequence[int] | None = None


@dataclass
class Batch:
    tasks: list[Any]
    annotations: dict[int, list[Any]]
    predictions: dict[int, list[Any]]


def batches(session: Session, selection: Selection, *, predictions: bool = True, size: int = BATCH) -> Iterator[Batch]:
    base = select(*TASK_COLUMNS).where(Task.project_id == selection.project_id)
    if selection.annotated_only:
        base = base.where((Task.total_annotations + Task.cancelled_annotations) > 0)
    pid = selection.project_id
    if selection.ids is not None:
        wanted = sorted(set(selection.ids))
        for start in range(0, len(wanted), size):
            rows = list(session.execute(base.where(Task.id.in_(wanted[start : start + size])).order_by(Task.id)))
            if rows:
                ids = [r.id for r in rows]
                yield Batch(
                    rows,
                    _group(session, ANNOTATION_COLUMNS, Annotation, Annotation.task_id.in_(ids)),
                    _group(session, PREDICTION_COLUMNS, Prediction, Prediction.task_id.in_(ids)) if predictions else {},
                )
        return
    last = 0
    while True:
        rows = list(session.execute(base.where(Task.id > last).order_by(Task.id).limit(size)))
        if not rows:
            return
        hi = rows[-1].id
        in_range = (Annotation.project_id == pid, Annotation.task_id > last, Annotation.task_id <= hi)
        pred_range = (Prediction.project_id == pid, Prediction.task_id > last, Prediction.task_id <= hi)
        yield Batch(
            rows,
            _group(session, ANNOTATION_COLUMNS, Annotation, *in_range),
            _group(session, PREDICTION_COLUMNS, Prediction, *pred_range) if predictions else {},
        )
        last = hi


def _group(session: Session, columns: Sequence[Any], model: Any, *where: Any) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = defaultdict(list)
    for row in session.execute(select(*columns).where(*where).order_by(model.task_id, model.id)):
        out[row.task_id].append(row)
    return out


def data_keys(session: Session, selection: Selection) -> list[str]:
    """Every key of the selected tasks' data (CSV needs its columns before the first row)."""
    dialect = session.get_bind().dialect.name
    where = "project_id = :pid"
    if selection.annotated_only:
        where += " AND total_annotations + cancelled_annotations > 0"
    params: dict[str, Any] = {"pid": selection.project_id}
    if dialect == "postgresql":
        sql = f"SELECT DISTINCT jsonb_object_keys(data) FROM tasks WHERE {where}"
    else:
        sql = f"SELECT DISTINCT j.key FROM tasks, json_each(tasks.data) AS j WHERE {where}"
    if selection.ids is not None:
        # An explicit selection is small enough to read its keys from the rows themselves.
        stmt = select(cast(Task.data, Text)).where(Task.project_id == selection.project_id, Task.id.in_(selection.ids))
        import orjson

        keys: set[str] = set()
        for (raw,) in session.execute(stmt):
            keys.update(orjson.loads(raw))
        return sorted(keys)
    return sorted(k for (k,) in session.execute(text(sql), params))


def count(session: Session, selection: Selection) -> int:
    stmt = select(func.count()).select_from(Task).where(Task.project_id == selection.project_id)
    if selection.annotated_only:
        stmt = stmt.where((Task.total_annotations + Task.cancelled_annotations) > 0)
    if selection.ids is not None:
        stmt = stmt.where(Task.id.in_(selection.ids))
    return session.scalar(stmt) or 0
