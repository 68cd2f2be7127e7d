"""Per-task counters, kept in the tasks table so lists and queues never aggregate per request.

Every service that changes annotations or predictions calls `refresh()` for the tasks it
touched, inside its transaction. One UPDATE per call, whatever the number of tasks.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from api_server.db.models import Annotation, Prediction, Project, Task

_CHUNK = 5000


def refresh(session: Session, task_ids: Iterable[int]) -> None:
    """Recompute annotation/prediction counts, is_labeled and the newest prediction score."""
    ids = sorted(set(task_ids))
    for start in range(0, len(ids), _CHUNK):
        _refresh_chunk(session, ids[start : start + _CHUNK])


def _refresh_chunk(session: Session, ids: list[int]) -> None:
    total = (
        select(func.count())
        .where(Annotation.task_id == Task.id, Annotation.was_cancelled.is_(False))
        .correlate(Task)
        .scalar_subquery()
    )
    cancelled = (
        select(func.count())
        .where(Annotation.task_id == Task.id, Annotation.was_cancelled.is_(True))
        .correlate(Task)
        .scalar_subquery()
    )
    predictions = select(func.count()).where(Prediction.task_id == Task.id).correlate(Task).scalar_subquery()
    newest_score = (
        select(Prediction.score)
        .where(Prediction.task_id == Task.id)
        .order_by(Prediction.created_at.desc(), Prediction.id.desc())
        .limit(1)
        .correlate(Task)
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
        .correlate(Task)
        .scalar_subquery()
    )
    session.execute(
        update(Task)
        .where(Task.id.in_(ids))
        .values(
            total_annotations=total,
            cancelled_annotations=cancelled,
            total_predictions=predictions,
            prediction_score=newest_score,
            is_labeled=and_(counted >= Task.overlap, counted > 0),
        )
        .execution_options(synchronize_session=False)
    )
