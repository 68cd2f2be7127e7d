"""Queries of the labeling workflow: slots of a task, locks, next-task candidates, history."""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy import ColumnElement, Select, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from api_server.db.models import Annotation, Draft, Project, Task, TaskLock, TaskTransition

SEQUENTIAL = "Sequential sampling"
UNIFORM = "Uniform sampling"
UNCERTAINTY = "Uncertainty sampling"
IGNORE_SKIPPED = "IGNORE_SKIPPED"
REQUEUE_FOR_ME = "REQUEUE_FOR_ME"


def _counted(skip_queue: str) -> list[ColumnElement[bool]]:
    """Annotations that fill one of a task's overlap slots: not rejected; skips only with IGNORE_SKIPPED."""
    conditions: list[ColumnElement[bool]] = [
        or_(Annotation.review_status.is_(None), Annotation.review_status != "rejected")
    ]
    if skip_queue != IGNORE_SKIPPED:
        conditions.append(Annotation.was_cancelled.is_(False))
    return conditions


def lock_task(session: Session, task_id: int) -> Task | None:
    """The task row, locked for this transaction on PostgreSQL (SQLite is serialized already)."""
    return session.scalars(
        select(Task).where(Task.id == task_id).with_for_update().execution_options(populate_existing=True)
    ).first()


def slot_counts(session: Session, task_id: int, skip_queue: str, now: datetime) -> tuple[int, int, bool]:
    """(annotations that count, active locks, all counted annotations accepted) of a task."""
    locks = (
        select(func.count())
        .select_from(TaskLock)
        .where(TaskLock.task_id == task_id, TaskLock.expire_at > now)
        .scalar_subquery()
    )
    counted, accepted, locked = session.execute(
        select(func.count(), func.count().filter(Annotation.review_status == "accepted"), locks).where(
            Annotation.task_id == task_id, *_counted(skip_queue)
        )
    ).one()
    return counted, locked or 0, counted > 0 and accepted == counted


def _available(project: Project, user_id: int, now: datetime, *, allow_own_skips: bool) -> list[ColumnElement[bool]]:
    counted = (
        select(func.count())
        .where(Annotation.task_id == Task.id, *_counted(project.skip_queue))
        .correlate(Task)
        .scalar_subquery()
    )
    locked = (
        select(func.count())
        .select_from(TaskLock)
        .where(TaskLock.task_id == Task.id, TaskLock.expire_at > now, TaskLock.user_id != user_id)
        .correlate(Task)
        .scalar_subquery()
    )
    mine = [Annotation.task_id == Task.id, Annotation.completed_by_id == user_id]
    if allow_own_skips:
        mine.append(Annotation.was_cancelled.is_(False))
    # A count, not NOT EXISTS: PostgreSQL would plan NOT EXISTS as an anti-join that reads all
    # of the user's annotations; a per-row subquery stays an index lookup on the few rows scanned.
    own = select(func.count()).where(*mine).correlate(Task).scalar_subquery()
    return [
        Task.project_id == project.id,
        Task.is_labeled.is_(False),
        counted + locked < Task.overlap,
        own == 0,
    ]


def _ordered(stmt: Select[tuple[Task]], sampling: str) -> Select[tuple[Task]]:
    if sampling == UNCERTAINTY:
        # Least certain first (the active-learning hook); tasks without predictions after.
        return stmt.order_by(Task.prediction_score.asc().nulls_last(), Task.id)
    return stmt.order_by(Task.id)


def candidates(
    session: Session, project: Project, user_id: int, now: datetime, *, limit: int, allow_own_skips: bool = False
) -> list[Task]:
    """Tasks the user may get, in sampling order, row-locked (skipping rows others hold) on PostgreSQL.

    Uniform sampling starts at a random id and wraps around: an index range scan, never a
    sort of the whole project.
    """
    where = _available(project, user_id, now, allow_own_skips=allow_own_skips)
    base = select(Task).where(*where).execution_options(populate_existing=True)
    if project.sampling == UNIFORM:
        low, high = session.execute(
            select(func.min(Task.id), func.max(Task.id)).where(Task.project_id == project.id)
        ).one()
        if low is None:
            return []
        start = random.randint(low, high)
        for part in (Task.id >= start, Task.id < start):
            stmt = base.where(part).order_by(Task.id).limit(limit).with_for_update(skip_locked=True, of=Task)
            rows = list(session.scalars(stmt))
            if rows:
                return rows
        return []
    stmt = _ordered(base, project.sampling).limit(limit).with_for_update(skip_locked=True, of=Task)
    return list(session.scalars(stmt))


def still_available(
    session: Session, project: Project, user_id: int, task_id: int, now: datetime, *, allow_own_skips: bool = False
) -> bool:
    """Re-check one candidate in a new statement (PostgreSQL: a fresh snapshot sees locks committed meanwhile)."""
    where = _available(project, user_id, now, allow_own_skips=allow_own_skips)
    return session.scalar(select(Task.id).where(Task.id == task_id, *where)) is not None


def held_lock(session: Session, project_id: int, user_id: int, now: datetime) -> TaskLock | None:
    """The user's unexpired lock on a task of the project they have not annotated yet."""
    annotated = exists().where(Annotation.task_id == TaskLock.task_id, Annotation.completed_by_id == user_id)
    return session.scalars(
        select(TaskLock)
        .join(Task, Task.id == TaskLock.task_id)
        .where(TaskLock.user_id == user_id, Task.project_id == project_id, TaskLock.expire_at > now, ~annotated)
        .order_by(TaskLock.id)
        .limit(1)
    ).first()


def put_lock(session: Session, task_id: int, user_id: int, now: datetime, expire_at: datetime) -> None:
    """Lock the task for the user, dropping the user's expired locks (and any old one on this task)."""
    session.execute(
        delete(TaskLock).where(TaskLock.user_id == user_id, or_(TaskLock.expire_at <= now, TaskLock.task_id == task_id))
    )
    session.add(TaskLock(task_id=task_id, user_id=user_id, expire_at=expire_at))


def release_lock(session: Session, task_id: int, user_id: int) -> None:
    session.execute(delete(TaskLock).where(TaskLock.task_id == task_id, TaskLock.user_id == user_id))


def extend_lock(session: Session, lock_id: int, expire_at: datetime) -> None:
    session.execute(update(TaskLock).where(TaskLock.id == lock_id).values(expire_at=expire_at))


def other_drafts(session: Session, task_id: int, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Draft).where(Draft.task_id == task_id, Draft.user_id != user_id)
        )
        or 0
    )


def history(session: Session, task_id: int) -> list[TaskTransition]:
    return list(
        session.scalars(select(TaskTransition).where(TaskTransition.task_id == task_id).order_by(TaskTransition.id))
    )


def get_task(session: Session, task_id: int) -> Task | None:
    return session.get(Task, task_id, populate_existing=True)


def record_transition(
    session: Session, task_id: int, from_state: str, to_state: str, user_id: int | None, comment: str
) -> None:
    session.add(
        TaskTransition(task_id=task_id, from_state=from_state, to_state=to_state, user_id=user_id, comment=comment)
    )
