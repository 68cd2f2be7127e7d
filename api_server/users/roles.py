"""Roles and what they may do.

A user has an organisation role (admin for the whole server, or the default for projects
they are not a member of) and per-project membership roles. Roles are ordered: a role may
do all that the roles below it may.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"
    annotator = "annotator"
    reviewer = "reviewer"
    manager = "manager"
    admin = "admin"


RANK = {Role.viewer: 0, Role.annotator: 1, Role.reviewer: 2, Role.manager: 3, Role.admin: 4}
PROJECT_ROLES = (Role.manager, Role.reviewer, Role.annotator, Role.viewer)


def at_least(role: str, minimum: Role) -> bool:
    return RANK.get(Role(role), -1) >= RANK[minimum]


# The roles whose members may label (take tasks from /next, submit annotations).
LABELERS = tuple(role for role in Role if at_least(role, Role.annotator))
