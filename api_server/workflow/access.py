"""Who may do what in a project's labeling workflow: the access check is projects.service's one
(`project_access`, `task_access`); this adds the workflow's view of roles."""

from __future__ import annotations

from api_server.projects.service import project_access, task_access
from api_server.users.roles import Role, at_least

__all__ = ["is_at_least", "project_access", "sees_everyones_work", "task_access"]


def sees_everyones_work(role: str) -> bool:
    """Annotators see only their own annotations and drafts; viewers and reviewers+ see all."""
    return role != Role.annotator.value


def is_at_least(role: str, minimum: Role) -> bool:
    return at_least(role, minimum)
