"""Task endpoints (Label Studio paths): list, create, get, update, delete, bulk delete."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, Query, Request, Response

from api_server.common.errors import BadRequest
from api_server.common.inputs import InputError, check_value, id_list
from api_server.common.pagination import PageParams, page_params
from api_server.common.routing import DualSlashRouter
from api_server.deps import CurrentUser, SessionDep
from api_server.tasks import service
from api_server.tasks.repository import TaskFilter
from api_server.tasks.schemas import BulkDelete, TaskCreate, TaskList, TaskPublic, TaskUpdate
from api_server.tasks.serialize import json_response

router = DualSlashRouter(tags=["tasks"])


class TaskQuery:
    def __init__(
        self,
        request: Request,
        is_labeled: Annotated[bool | None, Query(description="only labeled (true) or unlabeled (false) tasks")] = None,
        only_annotated: Annotated[
            bool | None, Query(description="only tasks with (true) or without (false) annotations")
        ] = None,
        has_predictions: Annotated[
            bool | None, Query(description="only tasks with (true) or without (false) predictions")
        ] = None,
        after: Annotated[int | None, Query(description="keyset pagination: tasks with id greater than this")] = None,
    ) -> None:
        self.filter = TaskFilter(
            ids=id_list(request),
            is_labeled=is_labeled,
            only_annotated=only_annotated,
            has_predictions=has_predictions,
            after=after,
        )


def _json_param(name: str, raw: str | None) -> Any:
    if raw is None or raw == "":
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest(f"{name}: not valid JSON", validation_errors={name: ["must be a JSON object"]}) from None
    try:
        check_value(value, name)  # the JSON's strings and numbers within the input limits, as bodies are
    except InputError as exc:
        raise BadRequest(str(exc), validation_errors={exc.field: [exc.message]}) from None
    return value


@router.get("/api/tasks/", response_model=TaskList)
def list_tasks(
    session: SessionDep,
    user: CurrentUser,
    page: Annotated[PageParams, Depends(page_params)],
    query: Annotated[TaskQuery, Depends()],
    project: Annotated[int | None, Query(description="project id")] = None,
    fields: Annotated[Literal["task_only", "all"], Query(description="all: with annotations and predictions")] = (
        "task_only"
    ),
    view: Annotated[int | None, Query(description="a data-manager view: its filters, ordering, selected items")] = None,
    dm_query: Annotated[
        str | None,
        Query(
            alias="query",
            description='JSON {"filters": {...}, "ordering": [...], "selectedItems": {...}}; ignored with `view`',
        ),
    ] = None,
    selected_items: Annotated[
        str | None, Query(alias="selectedItems", description="JSON {all, included | excluded}")
    ] = None,
    resolve_uri: Annotated[
        bool, Query(description="rewrite bucket URIs in task data to this server's presign endpoint")
    ] = True,
) -> Response:
    """Label Studio's task list: {"tasks": [...], "total", "total_annotations", "total_predictions"}.

    Keyset paging: `after=<id of the last task of a page>` continues in the list's order.
    """
    parsed = _json_param("query", dm_query)
    selected = _json_param("selectedItems", selected_items)
    if selected is not None:
        if parsed is not None and not isinstance(parsed, dict):
            raise BadRequest("query: must be a JSON object", validation_errors={"query": ["must be a JSON object"]})
        parsed = {**(parsed or {}), "selectedItems": selected}
    tasks, (total, annotations, predictions) = service.list_tasks(
        session,
        user,
        query.filter,
        project_id=project,
        offset=page.offset,
        limit=page.page_size,
        with_results=fields == "all",
        view_id=view,
        query=parsed,
        resolve=resolve_uri,
    )
    return json_response(
        {"tasks": tasks, "total": total, "total_annotations": annotations, "total_predictions": predictions}
    )


@router.get("/api/projects/{project_id}/tasks/", response_model=list[TaskPublic])
def list_project_tasks(
    project_id: int,
    session: SessionDep,
    user: CurrentUser,
    page: Annotated[PageParams, Depends(page_params)],
    query: Annotated[TaskQuery, Depends()],
) -> Response:
    """A page of the project's tasks with annotations and predictions (a JSON list; total in X-Total-Count)."""
    tasks, (total, _, _) = service.list_tasks(
        session, user, query.filter, project_id=project_id, offset=page.offset, limit=page.page_size, with_results=True
    )
    response = json_response(tasks)
    response.headers["X-Total-Count"] = str(total)
    return response


@router.delete("/api/projects/{project_id}/tasks/", status_code=204)
def delete_project_tasks(
    project_id: int, request: Request, session: SessionDep, user: CurrentUser, body: BulkDelete | None = None
) -> Response:
    """Delete all tasks of the project, or only `ids` (query `?ids=1,2` or body {"ids": [...]})."""
    ids = id_list(request)
    if body is not None and body.ids is not None:
        ids = (ids or []) + body.ids
    service.bulk_delete(session, user, project_id, ids)
    return Response(status_code=204)


@router.post("/api/tasks/", response_model=TaskPublic, status_code=201)
def create_task(body: TaskCreate, session: SessionDep, user: CurrentUser) -> Response:
    return json_response(service.create_task(session, user, body), status_code=201)


@router.get("/api/tasks/{task_id}/", response_model=TaskPublic)
def get_task(
    task_id: int,
    session: SessionDep,
    user: CurrentUser,
    resolve_uri: Annotated[
        bool, Query(description="rewrite bucket URIs in task data to this server's presign endpoint")
    ] = True,
) -> Response:
    return json_response(service.get_task(session, user, task_id, resolve_uri))


@router.patch("/api/tasks/{task_id}/", response_model=TaskPublic)
def update_task(task_id: int, body: TaskUpdate, session: SessionDep, user: CurrentUser) -> Response:
    return json_response(service.update_task(session, user, task_id, body))


@router.delete("/api/tasks/{task_id}/", status_code=204)
def delete_task(task_id: int, session: SessionDep, user: CurrentUser) -> Response:
    service.delete_task(session, user, task_id)
    return Response(status_code=204)
