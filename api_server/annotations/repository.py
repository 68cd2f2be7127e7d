"""Queries on annotations and on the drafts a submission replaces."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
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


def take_drafts(session: Session, task_id: int, user_id: int, annotation_id: int | None) -> datetime | None:
    """Delete the user's drafts of the task (or of one annotation); return when the oldest was created."""
    where = [Draft.task_id == task_id, Draft.user_id == user_id]
    where.append(Draft.annotation_id.is_(None) if annotation_id is None else Draft.annotation_id == annotation_id)
    created = session.scalars(delete(Draft).where(*where).returning(Draft.created_at)).all()
    return min(created) if created else None
