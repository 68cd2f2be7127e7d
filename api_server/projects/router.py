"""Project endpoints (Label Studio paths)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response

from api_server.common.inputs import INT32_MAX
from api_server.common.pagination import Page, PageParams, page_params
from api_server.common.routing import DualSlashRouter
from api_server.deps import CurrentUser, SessionDep
from api_server.labelconfig.editor import editor_warnings
from api_server.projects import repository, service
from api_server.projects.schemas import (
    ProjectFields,
    ProjectPublic,
    ValidateConfigRequest,
    ValidateConfigResponse,
)

router = DualSlashRouter(prefix="/api/projects", tags=["projects"])


@router.get("/", response_model=Page[ProjectPublic])
def list_projects(
    session: SessionDep,
    user: CurrentUser,
    page: Annotated[PageParams, Depends(page_params)],
    ids: Annotated[str | None, Query(description="comma-separated project ids")] = None,
    title: Annotated[str | None, Query(description="substring of the title")] = None,
) -> Page[ProjectPublic]:
    """Projects the caller can see (admins: all; others: those they are a member of)."""
    # Ids past the INTEGER column cannot exist (and PostgreSQL refuses to compare them).
    id_list = [int(i) for i in ids.split(",") if i.strip().isdigit() and int(i) <= INT32_MAX] if ids else None
    total, rows = repository.list_visible(
        session, user, offset=page.offset, limit=page.page_size, ids=id_list, title=title
    )
    return Page(count=total, results=service.to_public_many(session, rows))


@router.post("/", response_model=ProjectPublic, status_code=201)
def create_project(body: ProjectFields, session: SessionDep, user: CurrentUser) -> ProjectPublic:
    """Create a project; its label config is validated first."""
    return service.to_public(session, service.create_project(session, user, body))


@router.post("/validate/", response_model=ValidateConfigResponse)
def validate_config(body: ValidateConfigRequest, user: CurrentUser) -> ValidateConfigResponse:
    """Validate a label config on its own (no project)."""
    interface = service.parse_config(body.label_config)
    return ValidateConfigResponse(
        label_config=body.label_config,
        parsed_label_config=service.parsed_config_dict(interface),
        data_variables=sorted(interface.variables),
        warnings=editor_warnings(body.label_config),
    )


@router.get("/{project_id}/", response_model=ProjectPublic)
def get_project(project_id: int, session: SessionDep, user: CurrentUser) -> ProjectPublic:
    return service.to_public(session, service.get_project(session, user, project_id))


@router.patch("/{project_id}/", response_model=ProjectPublic)
def update_project(project_id: int, body: ProjectFields, session: SessionDep, user: CurrentUser) -> ProjectPublic:
    """Change project settings; a new label config must fit the tasks already imported."""
    return service.to_public(session, service.update_project(session, user, project_id, body))


@router.delete("/{project_id}/", status_code=204)
def delete_project(project_id: int, session: SessionDep, user: CurrentUser) -> Response:
    service.delete_project(session, user, project_id)
    return Response(status_code=204)


@router.post("/{project_id}/validate/", response_model=ValidateConfigResponse)
def validate_config_for_project(
    project_id: int, body: ValidateConfigRequest, session: SessionDep, user: CurrentUser
) -> ValidateConfigResponse:
    """Validate a label config against this project's imported tasks."""
    interface = service.validate_config_for_project(session, user, project_id, body.label_config)
    return ValidateConfigResponse(
        label_config=body.label_config,
        parsed_label_config=service.parsed_config_dict(interface),
        data_variables=sorted(interface.variables),
        warnings=editor_warnings(body.label_config),
    )
