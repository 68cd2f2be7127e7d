"""Who may do what in a project's labeling workflow (on top of users.service roles)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api_server.common.errors import NotFound
from api_server.db.models import Project, Task, User
from api_server.users.roles import Role, at_least
from api_server.users.service import acting_role, check_project_role
from api_server.workflow import repository


def project_access(session: Session, user: User, project_id: int, minimum: Role) -> tuple[Project, str]:
    """The project and the caller's role in it: 404 when it does not exist, 403 naming the role needed."""
    project, membership = repository.project_with_role(session, project_id, user.id)
    if project is None:
        raise NotFound(f"project {project_id} does not exist")
    return project, check_project_role(acting_role(user, membership), project_id, minimum)


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
