"""Who may do what in a project's labeling workflow: the project check is projects.service's one
(`project_access`); this adds tasks and the workflow's view of roles."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api_server.common.errors import NotFound
from api_server.db.models import Project, Task, User
from api_server.projects.service import project_access
from api_server.users.roles import Role, at_least

__all__ = ["is_at_least", "project_access", "sees_everyones_work", "task_access"]


def task_access(session: Session, user: User, task_id: int, minimum: Role) -> tuple[Task, Project, str]:
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"task {task_id} does not exist")
    project, role = project_access(session, user, task.project_id, minimum)
    return task, project, role


def sees_everyones_work(role: str) -> bool:
    """Annotators see only their own annotations and drafts; viewers and reviewers+ see all."""
    return role != Role.annotator.value


def is_at_least(role: str, minimum: Role) -> bool:
    return at_least(role, minimum)
