"""Membership rules: managers (and admins) manage members; a project keeps at least one manager."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api_server.common.errors import BadRequest, Conflict, NotFound
from api_server.common.time import as_utc
from api_server.db.models import ProjectMember, User
from api_server.members import repository
from api_server.members.schemas import MemberPublic
from api_server.projects.service import get_project
from api_server.users.roles import PROJECT_ROLES, Role


def _project_role(role: Role | str) -> str:
    role = Role(role)
    if role not in PROJECT_ROLES:
        allowed = ", ".join(r.value for r in PROJECT_ROLES)
        raise BadRequest(
            f"role: '{role.value}' is not a project role (use one of {allowed}; admin is a user's organisation role)",
            validation_errors={"role": [f"must be one of {allowed}"]},
        )
    return role.value


def to_public(member: ProjectMember, user: User) -> MemberPublic:
    return MemberPublic(
        user=user.id,
        username=user.username,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        role=member.role,
        created_at=as_utc(member.created_at),
    )


def list_members(session: Session, actor: User, project_id: int) -> list[MemberPublic]:
    get_project(session, actor, project_id, Role.viewer)
    return [to_public(m, u) for m, u in repository.members(session, project_id)]


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise BadRequest(f"user: user {user_id} does not exist", validation_errors={"user": ["does not exist"]})
    return user


def add_member(session: Session, actor: User, project_id: int, user_id: int, role: Role | str) -> MemberPublic:
    get_project(session, actor, project_id, Role.manager)
    value = _project_role(role)
    user = _user(session, user_id)
    if repository.get(session, project_id, user_id) is not None:
        raise Conflict(
            f"user {user_id} is already a member of project {project_id}; change the role with PATCH",
            validation_errors={"user": ["already a member"]},
        )
    member = ProjectMember(project_id=project_id, user_id=user_id, role=value)
    session.add(member)
    session.commit()
    return to_public(member, user)


def _keep_a_manager(session: Session, member: ProjectMember, new_role: str | None) -> None:
    demoted = member.role == Role.manager.value and new_role != Role.manager.value
    if demoted and repository.manager_count(session, member.project_id) <= 1:
        raise Conflict(
            f"user {member.user_id} is the last manager of project {member.project_id}; "
            "make someone else a manager first"
        )


def update_member(session: Session, actor: User, project_id: int, user_id: int, role: Role | str) -> MemberPublic:
    get_project(session, actor, project_id, Role.manager)
    value = _project_role(role)
    member = repository.get(session, project_id, user_id)
    if member is None:
        raise NotFound(f"user {user_id} is not a member of project {project_id}")
    _keep_a_manager(session, member, value)
    member.role = value
    session.commit()
    return to_public(member, _user(session, user_id))


def upsert_member(session: Session, actor: User, project_id: int, user_id: int, role: Role | str) -> MemberPublic:
    if repository.get(session, project_id, user_id) is None:
        return add_member(session, actor, project_id, user_id, role)
    return update_member(session, actor, project_id, user_id, role)


def remove_member(session: Session, actor: User, project_id: int, user_id: int) -> None:
    # Anyone may leave a project; removing others takes a manager.
    minimum = Role.viewer if user_id == actor.id else Role.manager
    get_project(session, actor, project_id, minimum)
    member = repository.get(session, project_id, user_id)
    if member is None:
        raise NotFound(f"user {user_id} is not a member of project {project_id}")
    _keep_a_manager(session, member, None)
    session.delete(member)
    session.commit()


def annotators(session: Session, actor: User, project_id: int) -> list[User]:
    get_project(session, actor, project_id, Role.viewer)
    return repository.annotators(session, project_id)
