"""Queries on projects and their counters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache

from sqlalchemy import Select, and_, bindparam, func, select
from sqlalchemy.orm import Session

from api_server.db.models import Annotation, Project, ProjectMember, Task, User
from api_server.projects.schemas import ProjectCounts


def get(session: Session, project_id: int) -> Project | None:
    return session.get(Project, project_id)


@cache
def _project_with_role() -> Select[Project, str | None]:
    # Built once: the access check runs on every project-scoped request, the labeling loop's included.
    member = and_(ProjectMember.project_id == Project.id, ProjectMember.user_id == bindparam("user_id"))
    return (
        select(Project, ProjectMember.role)
        .outerjoin(ProjectMember, member)
        .where(Project.id == bindparam("project_id"))
    )


def project_with_role(session: Session, project_id: int, user_id: int) -> tuple[Project | None, str | None]:
    """The project and the user's membership role in it, in one query."""
    row = session.execute(_project_with_role(), {"project_id": project_id, "user_id": user_id}).first()
    return (row[0], row[1]) if row is not None else (None, None)


def list_visible(
    session: Session,
    user: User,
    *,
    offset: int,
    limit: int,
    ids: Sequence[int] | None = None,
    title: str | None = None,
) -> tuple[int, list[Project]]:
    stmt = select(Project)
    if user.role != "admin":
        member_of = select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)
        stmt = stmt.where(Project.id.in_(member_of))
    if ids:
        stmt = stmt.where(Project.id.in_(ids))
    if title:
        stmt = stmt.where(Project.title.ilike(f"%{title}%"))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Project.id.desc()).offset(offset).limit(limit)).all()
    return total, list(rows)


def counts(session: Session, project_ids: Iterable[int]) -> dict[int, ProjectCounts]:
    """Counters of several projects from the per-task counters (one grouped query)."""
    ids = list(project_ids)
    result = {pid: ProjectCounts() for pid in ids}
    if not ids:
        return result
    rows = session.execute(
        select(
            Task.project_id,
            func.count(),
            func.count().filter(Task.total_annotations > 0),
            func.count().filter(Task.is_labeled),
            func.coalesce(func.sum(Task.total_annotations), 0),
            func.coalesce(func.sum(Task.cancelled_annotations), 0),
            func.coalesce(func.sum(Task.total_predictions), 0),
        )
        .where(Task.project_id.in_(ids))
        .group_by(Task.project_id)
    )
    for pid, total, with_ann, labeled, n_annotations, cancelled, predictions in rows:
        result[pid] = ProjectCounts(
            task_number=total,
            num_tasks_with_annotations=with_ann,
            finished_task_number=labeled,
            total_annotations_number=n_annotations,
            skipped_annotations_number=cancelled,
            total_predictions_number=predictions,
            useful_annotation_number=n_annotations,
            queue_total=total,
            queue_done=labeled,
        )
    gt = session.execute(
        select(Annotation.project_id, func.count())
        .where(Annotation.project_id.in_(ids), Annotation.ground_truth)
        .group_by(Annotation.project_id)
    )
    for pid, n in gt:
        result[pid].ground_truth_number = n
    return result


def data_key_sample(session: Session, project_id: int, limit: int = 1000) -> list[dict[str, object]]:
    """Data of the first tasks (to check a new config against imported data)."""
    return [
        row
        for (row,) in session.execute(
            select(Task.data).where(Task.project_id == project_id).order_by(Task.id).limit(limit)
        )
    ]
