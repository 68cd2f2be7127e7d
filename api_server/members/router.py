"""Project members (kubelabel) and annotators (Label Studio path)."""

from __future__ import annotations

from fastapi import Response

from api_server.common.routing import DualSlashRouter
from api_server.deps import CurrentUser, SessionDep
from api_server.members import service
from api_server.members.schemas import MemberCreate, MemberPublic, MemberUpdate, UserSimple

router = DualSlashRouter(prefix="/api/projects", tags=["members"])


@router.get("/{project_id}/members/", response_model=list[MemberPublic])
def list_members(project_id: int, session: SessionDep, user: CurrentUser) -> list[MemberPublic]:
    """Members of the project and their roles (any member may look)."""
    return service.list_members(session, user, project_id)


@router.post("/{project_id}/members/", response_model=MemberPublic, status_code=201)
def add_member(project_id: int, body: MemberCreate, session: SessionDep, user: CurrentUser) -> MemberPublic:
    """Add a user with a project role: manager, reviewer, annotator or viewer (managers and admins)."""
    return service.add_member(session, user, project_id, body.user, body.role)


@router.patch("/{project_id}/members/{user_id}/", response_model=MemberPublic)
def update_member(
    project_id: int, user_id: int, body: MemberUpdate, session: SessionDep, user: CurrentUser
) -> MemberPublic:
    """Change a member's role (managers and admins); the last manager cannot be demoted."""
    return service.update_member(session, user, project_id, user_id, body.role)


@router.delete("/{project_id}/members/{user_id}/", status_code=204)
def remove_member(project_id: int, user_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Remove a member (managers and admins; anyone may remove themselves)."""
    service.remove_member(session, user, project_id, user_id)
    return Response(status_code=204)


@router.get("/{project_id}/annotators/", response_model=list[UserSimple])
def annotators(project_id: int, session: SessionDep, user: CurrentUser) -> list[UserSimple]:
    """Users who annotated in the project, and members with the annotator role."""
    return [UserSimple.model_validate(u, from_attributes=True) for u in service.annotators(session, user, project_id)]
