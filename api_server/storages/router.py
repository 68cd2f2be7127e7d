"""Storage endpoints (Label Studio paths): /api/storages/{s3,gcs,azure} and /api/storages/export/{...}.

Per type and direction: list, create, get, update, delete, validate, sync. kubelabel adds
`POST .../{id}/known-keys` and `POST .../{id}/links` (batch import with storage links, used
by `kubelabel sync`) and the presign endpoints for task media.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Query, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from api_server.common.errors import ApiError, NotFound
from api_server.common.routing import DualSlashRouter
from api_server.deps import CurrentUser, SessionDep
from api_server.projects.service import get_project, task_access
from api_server.storages import presign, service
from api_server.storages.config import KINDS
from api_server.storages.providers import BucketNotFoundError, ObjectNotFoundError, StorageError
from api_server.storages.schemas import (
    KnownKeysRequest,
    KnownKeysResponse,
    LinkBatch,
    LinkBatchResult,
    StoragePayload,
    StorageTypeInfo,
)
from api_server.users.roles import Role

router = DualSlashRouter(tags=["storages"])


def _base(direction: str, kind: str) -> str:
    return f"/api/storages/export/{kind}" if direction == "export" else f"/api/storages/{kind}"


def _add_routes(direction: str, kind: str) -> None:
    base = _base(direction, kind)
    # Label Studio's import list path ends in a slash, its export list path does not.
    list_path = base if direction == "export" else base + "/"
    label = f"{direction} {kind}"

    def list_(
        session: SessionDep, user: CurrentUser, project: Annotated[int | None, Query()] = None
    ) -> list[dict[str, Any]]:
        rows = service.list_storages(session, user, direction, kind, project)
        return [service.to_public(r, direction) for r in rows]

    def create(body: StoragePayload, session: SessionDep, user: CurrentUser, response: Response) -> dict[str, Any]:
        row = service.create_storage(session, user, direction, kind, body)
        response.status_code = 201
        return service.to_public(row, direction)

    def get(storage_id: int, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
        return service.to_public(service.get_storage(session, user, direction, kind, storage_id), direction)

    def patch(storage_id: int, body: StoragePayload, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
        row = service.update_storage(session, user, direction, kind, storage_id, body)
        return service.to_public(row, direction)

    def delete(storage_id: int, session: SessionDep, user: CurrentUser) -> Response:
        service.delete_storage(session, user, direction, kind, storage_id)
        return Response(status_code=204)

    def validate(body: StoragePayload, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
        service.validate_storage(session, user, direction, kind, body, body.id)
        return {}

    def sync(storage_id: int, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
        row = service.start_sync(session, user, direction, kind, storage_id)
        return service.to_public(row, direction)

    routes: list[tuple[str, str, Callable[..., Any], str]] = [
        ("GET", list_path, list_, f"List {label} storages of a project"),
        ("POST", list_path, create, f"Create a {label} storage (upsert by external_name)"),
        ("POST", base + "/validate", validate, f"Check a {label} storage's bucket and credentials"),
        ("GET", base + "/{storage_id}", get, f"Get a {label} storage"),
        ("PATCH", base + "/{storage_id}", patch, f"Update a {label} storage"),
        ("DELETE", base + "/{storage_id}", delete, f"Delete a {label} storage (its tasks stay)"),
        ("POST", base + "/{storage_id}/sync", sync, f"Start a background sync of a {label} storage"),
    ]
    if direction == "import":

        def known_keys(
            storage_id: int, body: KnownKeysRequest, session: SessionDep, user: CurrentUser
        ) -> KnownKeysResponse:
            return KnownKeysResponse(etags=service.known_keys(session, user, kind, storage_id, body.keys))

        def links(storage_id: int, body: LinkBatch, session: SessionDep, user: CurrentUser) -> LinkBatchResult:
            result = service.submit_links(session, user, kind, storage_id, body)
            return LinkBatchResult(
                created=result.created, updated=result.updated, unchanged=result.unchanged, errors=result.errors
            )

        routes += [
            ("POST", base + "/{storage_id}/known-keys", known_keys, "Which object keys are already imported"),
            ("POST", base + "/{storage_id}/links", links, "Import tasks with their storage links (idempotent)"),
        ]
    for method, path, endpoint, summary in routes:
        endpoint.__name__ = f"{direction}_{kind}_{endpoint.__name__.rstrip('_')}"
        router.add_api_route(path, endpoint, methods=[method], summary=summary)


@router.get("/api/storages/types", response_model=list[StorageTypeInfo])
def import_types(user: CurrentUser) -> list[StorageTypeInfo]:
    return [StorageTypeInfo(name=k, title=service.TITLES[k]) for k in KINDS]


@router.get("/api/storages/export/types", response_model=list[StorageTypeInfo])
def export_types(user: CurrentUser) -> list[StorageTypeInfo]:
    return [StorageTypeInfo(name=k, title=service.TITLES[k]) for k in KINDS]


@router.get("/api/storages/")
def all_import_storages(
    session: SessionDep, user: CurrentUser, project: Annotated[int | None, Query()] = None
) -> list[dict[str, Any]]:
    """Every import storage of a project, all types."""
    out: list[dict[str, Any]] = []
    for kind in KINDS:
        out += [service.to_public(r, "import") for r in service.list_storages(session, user, "import", kind, project)]
    return out


for _direction in ("export", "import"):
    for _kind in KINDS:
        _add_routes(_direction, _kind)


# -- presigned media ---------------------------------------------------------------------------


class StorageUnreachable(ApiError):
    """The storage behind a media request cannot be used (its endpoint refused, or failing)."""

    status_code = 502


def _media(session: SessionDep, project_id: int, fileuri: str) -> Response:
    uri = presign.decode_fileuri(fileuri)
    storage, config, key = presign.storage_for(session, project_id, uri)
    try:
        url = presign.presigned_url(storage, config, key)
        if url is not None:
            return RedirectResponse(
                url, status_code=303, headers={"Cache-Control": f"private, max-age={config.presign_ttl * 30}"}
            )
        stream = presign.provider_for(storage, config).open(key)
    except (ObjectNotFoundError, BucketNotFoundError):
        raise NotFound(f"fileuri: {key!r} does not exist in {config.bucket!r}") from None
    except StorageError as exc:  # e.g. an endpoint the outbound-address policy refuses
        raise StorageUnreachable(f"fileuri: {exc}") from None

    return StreamingResponse(presign.chunks(stream), media_type=presign.content_type(key))


def task_presign(task_id: int, session: SessionDep, user: CurrentUser, fileuri: Annotated[str, Query()]) -> Response:
    """Redirect to a presigned URL of a task's storage object (or stream it when presign is off)."""
    task, _, _ = task_access(session, user, task_id, Role.annotator)
    return _media(session, task.project_id, fileuri)


def project_presign(
    project_id: int, session: SessionDep, user: CurrentUser, fileuri: Annotated[str, Query()]
) -> Response:
    get_project(session, user, project_id, Role.annotator)
    return _media(session, project_id, fileuri)


for _prefix in ("", "/api"):
    router.add_api_route(
        f"{_prefix}/tasks/{{task_id}}/presign/", task_presign, methods=["GET"], include_in_schema=bool(_prefix)
    )
    router.add_api_route(
        f"{_prefix}/projects/{{project_id}}/presign/", project_presign, methods=["GET"], include_in_schema=bool(_prefix)
    )
