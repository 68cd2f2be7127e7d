"""Queries on annotations and on the drafts a submission replaces."""

from __future__ import annotations

from datetime import datetime
from functools import cache

from sqlalchemy import Executable, bindparam, delete, select
from sqlalchemy.orm import Session

from api_server.db.models import Annotation, Draft, User


def for_task(session: Session, task_id: int, only_user: int | None = None) -> list[Annotation]:
    stmt = select(Annotation).where(Annotation.task_id == task_id)
    if only_user is not None:
        stmt = stmt.where(Annotation.completed_by_id == only_user)
    return list(session.scalars(stmt.order_by(Annotation.id)))


def usernames(session: Session, user_ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).tuples().all())


@cache
def _take_drafts(of_annotation: bool) -> Executable:
    drafts = Draft.__table__
    where = [drafts.c.task_id == bindparam("task_id"), drafts.c.user_id == bindparam("user_id")]
    annotation = drafts.c.annotation_id
    where.append(annotation == bindparam("annotation_id") if of_annotation else annotation.is_(None))
    return delete(drafts).where(*where).returning(drafts.c.created_at)


def take_drafts(session: Session, task_id: int, user_id: int, annotation_id: int | None) -> datetime | None:
    """Delete the user's drafts of the task (or of one annotation); return when the oldest was created.

    Runs on every submission: a statement built once, on the table (no ORM bookkeeping).
    """
    params = {"task_id": task_id, "user_id": user_id, "annotation_id": annotation_id}
    created = session.connection().execute(_take_drafts(annotation_id is not None), params).scalars().all()
    return min(created) if created else None
