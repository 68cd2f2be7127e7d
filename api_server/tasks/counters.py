"""Per-task counters, kept in the tasks table so lists and queues never aggregate per request.

Every service that changes annotations or predictions calls `refresh()` for the tasks it
touched, inside its transaction. One UPDATE per call, whatever the number of tasks; it is
built once (the ids are an expanding bind parameter) because building and hashing it cost
more than running it. It writes the table directly; `refresh_row()` also brings one loaded
task row up to date (for services that go on using it).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from sqlalchemy import Executable, and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from api_server.db.models import Annotation, Prediction, Project, Task

_CHUNK = 5000
_FIELDS = ("total_annotations", "cancelled_annotations", "total_predictions", "prediction_score", "is_labeled")


def refresh(session: Session, task_ids: Iterable[int]) -> None:
    """Recompute annotation/prediction counts, is_labeled and the newest prediction score."""
    ids = sorted(set(task_ids))
    for start in range(0, len(ids), _CHUNK):
        _refresh_chunk(session, ids[start : start + _CHUNK])


def refresh_row(session: Session, task: Task) -> None:
    """refresh() of one task whose ORM row the caller keeps: the row gets the new counters too."""
    row = session.connection().execute(_statement(returning=True), {"ids": [task.id]}).one()
    for name in (*_FIELDS, "updated_at"):
        set_committed_value(task, name, getattr(row, name))


def _refresh_chunk(session: Session, ids: list[int]) -> None:
    session.connection().execute(_statement(returning=False), {"ids": ids})


@cache
def _statement(*, returning: bool) -> Executable:
    tasks = Task.__table__
    total = (
        select(func.count())
        .where(Annotation.task_id == Task.id, Annotation.was_cancelled.is_(False))
        .correlate(tasks)
        .scalar_subquery()
    )
    cancelled = (
        select(func.count())
        .where(Annotation.task_id == Task.id, Annotation.was_cancelled.is_(True))
        .correlate(tasks)
        .scalar_subquery()
    )
    predictions = select(func.count()).where(Prediction.task_id == Task.id).correlate(tasks).scalar_subquery()
    newest_score = (
        select(Prediction.score)
        .where(Prediction.task_id == Task.id)
        .order_by(Prediction.created_at.desc(), Prediction.id.desc())
        .limit(1)
        .correlate(tasks)
        .scalar_subquery()
    )
    # Labeled once the annotations that count reach the task's overlap: skips and rejected
    # annotations never count; in projects that require review, only accepted ones do.
    counted = (
        select(func.count())
        .select_from(Annotation)
        .join(Project, Project.id == Annotation.project_id)
        .where(
            Annotation.task_id == Task.id,
            Annotation.was_cancelled.is_(False),
            or_(Annotation.review_status.is_(None), Annotation.review_status != "rejected"),
            or_(Project.review_required.is_(False), Annotation.review_status == "accepted"),
        )
        .correlate(tasks)
        .scalar_subquery()
    )
    stmt = (
        update(tasks)
        .where(tasks.c.id.in_(bindparam("ids", expanding=True)))
        .values(
            total_annotations=total,
            cancelled_annotations=cancelled,
            total_predictions=predictions,
            prediction_score=newest_score,
            is_labeled=and_(counted >= tasks.c.overlap, counted > 0),
        )
    )
    return stmt.returning(*(tasks.c[name] for name in (*_FIELDS, "updated_at"))) if returning else stmt
