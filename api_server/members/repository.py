"""Queries on project memberships."""

from __future__ import annotations

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from api_server.db.models import Annotation, ProjectMember, User
from api_server.users.roles import Role


def members(session: Session, project_id: int) -> list[tuple[ProjectMember, User]]:
    stmt = (
        select(ProjectMember, User)
        .join(User, User.id == ProjectMember.user_id)
        .where(ProjectMember.project_id == project_id)
        .order_by(ProjectMember.created_at, User.id)
    )
    return [(m, u) for m, u in session.execute(stmt)]


def get(session: Session, project_id: int, user_id: int) -> ProjectMember | None:
    return session.get(ProjectMember, (project_id, user_id))


def manager_count(session: Session, project_id: int) -> int:
    stmt = select(func.count()).where(ProjectMember.project_id == project_id, ProjectMember.role == Role.manager.value)
    return int(session.scalar(stmt) or 0)


def annotators(session: Session, project_id: int) -> list[User]:
    """Users who annotated in the project, and members with the annotator role."""
    annotated = select(Annotation.completed_by_id.label("uid")).where(
        Annotation.project_id == project_id, Annotation.completed_by_id.is_not(None)
    )
    assigned = select(ProjectMember.user_id.label("uid")).where(
        ProjectMember.project_id == project_id, ProjectMember.role == Role.annotator.value
    )
    ids = union(annotated, assigned).subquery()
    return list(session.scalars(select(User).where(User.id.in_(select(ids.c.uid))).order_by(User.id)))
