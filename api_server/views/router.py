"""Data-manager views (Label Studio's `/api/dm/views/`): the saved tabs of filters, ordering and columns."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from api_server.common.routing import DualSlashRouter
from api_server.deps import CurrentUser, SessionDep
from api_server.views import service
from api_server.views.schemas import ViewCreate, ViewOrder, ViewPublic, ViewUpdate, to_public

router = DualSlashRouter(prefix="/api/dm/views", tags=["views"])


@router.get("/", response_model=list[ViewPublic])
def list_views(
    session: SessionDep,
    user: CurrentUser,
    project: Annotated[int | None, Query(description="only this project's views")] = None,
) -> list[ViewPublic]:
    """The caller's views (of one project), in tab order."""
    return [to_public(v) for v in service.list_views(session, user, project)]


@router.post("/", response_model=ViewPublic, status_code=201)
def create_view(body: ViewCreate, session: SessionDep, user: CurrentUser) -> ViewPublic:
    """A new view of the caller's; its `data.filters`, `ordering` and `selectedItems` are checked as a query."""
    return to_public(service.create_view(session, user, body))


@router.post("/order/", status_code=204)
def order_views(body: ViewOrder, session: SessionDep, user: CurrentUser) -> Response:
    """Put the caller's views of a project in the order of `ids`."""
    service.reorder(session, user, body)
    return Response(status_code=204)


@router.delete("/reset/", status_code=204)
def reset_views(
    session: SessionDep, user: CurrentUser, project: Annotated[int, Query(description="project id")]
) -> Response:
    """Delete the caller's views of the project."""
    service.reset(session, user, project)
    return Response(status_code=204)


@router.get("/{view_id}/", response_model=ViewPublic)
def get_view(view_id: int, session: SessionDep, user: CurrentUser) -> ViewPublic:
    return to_public(service.get_view(session, user, view_id))


@router.patch("/{view_id}/", response_model=ViewPublic)
def update_view(view_id: int, body: ViewUpdate, session: SessionDep, user: CurrentUser) -> ViewPublic:
    """Change a view (its author, or a project manager); `data` replaces the stored data whole."""
    return to_public(service.update_view(session, user, view_id, body))


@router.put("/{view_id}/", response_model=ViewPublic)
def replace_view(view_id: int, body: ViewUpdate, session: SessionDep, user: CurrentUser) -> ViewPublic:
    return to_public(service.update_view(session, user, view_id, body))


@router.delete("/{view_id}/", status_code=204)
def delete_view(view_id: int, session: SessionDep, user: CurrentUser) -> Response:
    service.delete_view(session, user, view_id)
    return Response(status_code=204)
