"""Queries of the labeling workflow: slots of a task, locks, next-task candidates, history.

The labeling loop (/next, submit) runs these on every call, so each statement is built once
(`functools.cache`, values as bind parameters): SQLAlchemy then skips rebuilding and
re-hashing it, which cost more than the database's own work. Writes go to the tables through
Core (`_run`), not through the ORM's bulk machinery; the services keep their ORM rows in step.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Executable,
    Select,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api_server.db.base import utcnow
from api_server.db.models import Annotation, Project, Task, TaskLock, TaskTransition

SEQUENTIAL = "Sequential sampling"
UNIFORM = "Uniform sampling"
UNCERTAINTY = "Uncertainty sampling"
IGNORE_SKIPPED = "IGNORE_SKIPPED"
REQUEUE_FOR_ME = "REQUEUE_FOR_ME"

_P = bindparam
_tasks = Task.__table__
_locks = TaskLock.__table__
_transitions = TaskTransition.__table__


def _run(session: Session, stmt: Executable, params: dict[str, Any]) -> CursorResult[*tuple[Any, ...]]:
    """A Core statement in the session's transaction (no ORM bookkeeping)."""
    return session.connection().execute(stmt, params)


def _counted(skips_count: bool) -> list[ColumnElement[bool]]:
    """Annotations that fill one of a task's overlap slots: not rejected; skips only with IGNORE_SKIPPED."""
    conditions: list[ColumnElement[bool]] = [
        or_(Annotation.review_status.is_(None), Annotation.review_status != "rejected")
    ]
    if not skips_count:
        conditions.append(Annotation.was_cancelled.is_(False))
    return conditions


# --- task rows --------------------------------------------------------------------------------


@cache
def _lock_task() -> Select[Task]:
    return select(Task).where(Task.id == _P("task_id")).with_for_update().execution_options(populate_existing=True)


def lock_task(session: Session, task_id: int) -> Task | None:
    """The task row, locked for this transaction on PostgreSQL (SQLite is serialized already)."""
    return session.scalars(_lock_task(), {"task_id": task_id}).first()


@cache
def _set_state() -> Executable:
    return update(_tasks).where(_tasks.c.id == _P("task_id")).values(state=_P("state"), updated_at=_P("now"))


@cache
def _add_transition() -> Executable:
    return insert(_transitions)


def set_state(
    session: Session, task_id: int, from_state: str, to_state: str, user_id: int | None, comment: str
) -> datetime:
    """Write the task's new state and record the transition (the caller holds the row lock); returns the time."""
    now = utcnow()
    _run(session, _set_state(), {"task_id": task_id, "state": to_state, "now": now})
    _run(
        session,
        _add_transition(),
        {
            "task_id": task_id,
            "from_state": from_state,
            "to_state": to_state,
            "user_id": user_id,
            "comment": comment,
            "created_at": now,
        },
    )
    return now


@cache
def _slot_counts(skips_count: bool) -> Select[int, int, int]:
    locks = (
        select(func.count())
        .select_from(TaskLock)
        .where(TaskLock.task_id == _P("task_id"), TaskLock.expire_at > _P("now"))
        .scalar_subquery()
    )
    return select(func.count(), func.count().filter(Annotation.review_status == "accepted"), locks).where(
        Annotation.task_id == _P("task_id"), *_counted(skips_count)
    )


def slot_counts(session: Session, task_id: int, skip_queue: str, now: datetime) -> tuple[int, int, bool]:
    """(annotations that count, active locks, all counted annotations accepted) of a task."""
    stmt = _slot_counts(skip_queue == IGNORE_SKIPPED)
    counted, accepted, locked = _run(session, stmt, {"task_id": task_id, "now": now}).one()
    return counted, locked or 0, counted > 0 and accepted == counted


# --- next-task candidates ---------------------------------------------------------------------


def _available(skips_count: bool, allow_own_skips: bool) -> list[ColumnElement[bool]]:
    """A task the user (bind `user_id`) may take at `now`: open, a free slot, not theirs already."""
    counted = (
        select(func.count())
        .where(Annotation.task_id == Task.id, *_counted(skips_count))
        .correlate(Task)
        .scalar_subquery()
    )
    locked = (
        select(func.count())
        .select_from(TaskLock)
        .where(TaskLock.task_id == Task.id, TaskLock.expire_at > _P("now"), TaskLock.user_id != _P("user_id"))
        .correlate(Task)
        .scalar_subquery()
    )
    mine = [Annotation.task_id == Task.id, Annotation.completed_by_id == _P("user_id")]
    if allow_own_skips:
        mine.append(Annotation.was_cancelled.is_(False))
    # A count, not NOT EXISTS: PostgreSQL would plan NOT EXISTS as an anti-join that reads all
    # of the user's annotations; a per-row subquery stays an index lookup on the few rows scanned.
    own = select(func.count()).where(*mine).correlate(Task).scalar_subquery()
    return [
        Task.project_id == _P("project_id"),
        ~Task.is_labeled,
        counted + locked < Task.overlap,
        own == 0,
    ]


@cache
def _candidate(skips_count: bool, allow_own_skips: bool, order: str) -> Select[Task]:
    """One available task in sampling order, row-locked (skipping rows others hold) on PostgreSQL.

    order: "id" | "score" (uncertainty) | "from" / "before" (uniform: ids from / before `start`).
    """
    stmt = select(Task).where(*_available(skips_count, allow_own_skips)).execution_options(populate_existing=True)
    if order == "score":
        # Least certain first (the active-learning hook); tasks without predictions after.
        stmt = stmt.order_by(Task.prediction_score.asc().nulls_last(), Task.id)
    elif order == "from":
        stmt = stmt.where(Task.id >= _P("start")).order_by(Task.id)
    elif order == "before":
        stmt = stmt.where(Task.id < _P("start")).order_by(Task.id)
    else:
        # Import order; inner_id grows with id in a project, and only the queue index gives this order.
        stmt = stmt.order_by(Task.inner_id, Task.id)
    return stmt.limit(1).with_for_update(skip_locked=True, of=Task)


@cache
def _id_range() -> Select[int | None, int | None]:
    return select(func.min(Task.id), func.max(Task.id)).where(Task.project_id == _P("project_id"))


def candidate(
    session: Session,
    project: Project,
    user_id: int,
    now: datetime,
    *,
    allow_own_skips: bool,
    start: int | None,
    where: ColumnElement[bool] | None = None,
) -> Task | None:
    """The first task the user may get, in the project's sampling order (row-locked, see `_candidate`).

    Uniform sampling starts at a random id `start` and wraps around: an index range scan, never
    a sort of the whole project. `where` (a view's filters) narrows the candidates.
    """
    skips = project.skip_queue == IGNORE_SKIPPED
    params = {"project_id": project.id, "user_id": user_id, "now": now, "start": start}
    if project.sampling == UNIFORM and start is not None:
        orders = ["from", "before"]
    else:
        orders = ["score" if project.sampling == UNCERTAINTY else "id"]
    for order in orders:
        stmt = _candidate(skips, allow_own_skips, order)
        found = session.scalars(stmt if where is None else stmt.where(where), params).first()
        if found is not None:
            return found
    return None


def id_range(session: Session, project_id: int) -> tuple[int | None, int | None]:
    low, high = session.execute(_id_range(), {"project_id": project_id}).one()
    return low, high


# --- locks ------------------------------------------------------------------------------------


@cache
def _claim(skips_count: bool, allow_own_skips: bool, dialect: str) -> Executable:
    # The task is re-checked by this new statement: on PostgreSQL its fresh snapshot sees locks
    # and annotations committed after the candidate query's snapshot (see service._claim).
    still = select(Task.id).where(Task.id == _P("task_id"), *_available(skips_count, allow_own_skips))
    values = [_P(name, type_=_locks.c[name].type) for name in ("task_id", "user_id", "expire_at")]
    rows = select(*values).where(exists(still))
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = make(_locks).from_select(["task_id", "user_id", "expire_at"], rows)
    # The user's own expired lock on this task (it is unique per task and user) is renewed.
    stmt = stmt.on_conflict_do_update(
        index_elements=["task_id", "user_id"], set_={"expire_at": stmt.excluded.expire_at}
    )
    return stmt.returning(_locks.c.id)


def claim(
    session: Session,
    project: Project,
    task_id: int,
    user_id: int,
    now: datetime,
    expire_at: datetime,
    *,
    allow_own_skips: bool,
) -> bool:
    """Lock the task for the user if it is still available to them now; False if it no longer is."""
    dialect = session.get_bind().dialect.name
    stmt = _claim(project.skip_queue == IGNORE_SKIPPED, allow_own_skips, dialect)
    params = {"task_id": task_id, "user_id": user_id, "now": now, "expire_at": expire_at, "project_id": project.id}
    return _run(session, stmt, params).first() is not None


@cache
def _held_lock() -> Select[int, Task]:
    annotated = exists().where(Annotation.task_id == TaskLock.task_id, Annotation.completed_by_id == _P("user_id"))
    return (
        select(TaskLock.id, Task)
        .join(Task, Task.id == TaskLock.task_id)
        .where(
            TaskLock.user_id == _P("user_id"),
            Task.project_id == _P("project_id"),
            TaskLock.expire_at > _P("now"),
            ~annotated,
        )
        .order_by(TaskLock.id)
        .limit(1)
        .execution_options(populate_existing=True)
    )


def held_lock(session: Session, project_id: int, user_id: int, now: datetime) -> tuple[int, Task] | None:
    """(lock id, task) of the user's unexpired lock on a task of the project they have not annotated yet."""
    row = session.execute(_held_lock(), {"project_id": project_id, "user_id": user_id, "now": now}).first()
    return (row[0], row[1]) if row is not None else None


@cache
def _release_lock() -> Executable:
    mine = _locks.c.user_id == _P("user_id")
    return delete(_locks).where(mine, or_(_locks.c.task_id == _P("task_id"), _locks.c.expire_at <= _P("now")))


def release_lock(session: Session, task_id: int, user_id: int) -> None:
    """Drop the user's lock on the task, and any of their locks that expired."""
    _run(session, _release_lock(), {"task_id": task_id, "user_id": user_id, "now": utcnow()})


@cache
def _extend_lock() -> Executable:
    return update(_locks).where(_locks.c.id == _P("lock_id")).values(expire_at=_P("expire_at"))


def extend_lock(session: Session, lock_id: int, expire_at: datetime) -> None:
    _run(session, _extend_lock(), {"lock_id": lock_id, "expire_at": expire_at})


# --- the rest ---------------------------------------------------------------------------------


def history(session: Session, task_id: int) -> list[TaskTransition]:
    return list(
        session.scalars(select(TaskTransition).where(TaskTransition.task_id == task_id).order_by(TaskTransition.id))
    )
