"""Export endpoints (Label Studio's synchronous export): streamed, never held in memory whole."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import StreamingResponse

from api_server.common.inputs import id_list
from api_server.common.routing import DualSlashRouter
from api_server.deps import CurrentUser, SessionDep
from api_server.exports import service
from api_server.exports.formats import listing

router = DualSlashRouter(prefix="/api/projects", tags=["export"])


@router.get("/{project_id}/export/formats")
def export_formats(project_id: int, session: SessionDep, user: CurrentUser) -> list[dict[str, object]]:
    """Every export format, `disabled` when the project's label config does not fit it."""
    return listing(service.formats_for(session, user, project_id))


@router.get("/{project_id}/export")
def export(
    project_id: int,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    export_type: Annotated[str | None, Query(alias="exportType", description="JSON, JSON_MIN, CSV, ...")] = None,
    export_type_snake: Annotated[str | None, Query(alias="export_type", include_in_schema=False)] = None,
    download_all_tasks: Annotated[bool, Query(description="false: only tasks with annotations")] = False,
    download_resources: Annotated[bool, Query(description="accepted; media files are never bundled")] = False,
    view: Annotated[
        int | None, Query(description="only tasks of this data-manager view (Label Studio: task_filter_options.view)")
    ] = None,
    resolve_uri: Annotated[
        bool, Query(description="rewrite bucket URIs in task data to this server's presign endpoint")
    ] = False,
) -> StreamingResponse:
    """Stream the project's tasks in the chosen format (ids filter: `ids=1,2` or `ids[]=1&ids[]=2`)."""
    plan = service.plan(
        session,
        user,
        project_id,
        export_type or export_type_snake or "JSON",
        annotated_only=not download_all_tasks,
        ids=id_list(request),
        view_id=view,
        resolve=resolve_uri,
    )
    return StreamingResponse(
        service.stream(request.app.state.session_factory, plan),
        media_type=plan.media_type,
        headers={"Content-Disposition": f'attachment; filename="{plan.filename}"'},
    )
