"""`POST /api/projects/{id}/import`: tasks from the body, uploaded files or URLs (Label Studio's endpoint).

The body's Content-Type picks the format (`?format=` overrides it). JSONL bodies are read
as a stream and written batch by batch inside one transaction, so a million-task upload
never sits in memory whole. Parsing and database work run in worker threads; the event
loop only moves bytes.

With an `Idempotency-Key` header (api_server/imports/idempotency.py) a retried request
answers the first one's response and writes nothing; the same key with another request is a 409.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import Header, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from api_server.common.errors import BadRequest, UnsupportedMediaType
from api_server.common.routing import DualSlashRouter
from api_server.db.models import User
from api_server.deps import CurrentUser, SessionDep, SettingsDep
from api_server.imports import idempotency, parsers, sources
from api_server.imports.parsers import CONTENT_TYPES, Format
from api_server.imports.predictions import import_predictions
from api_server.imports.schemas import ImportResponse, PredictionsImportResponse
from api_server.imports.service import BATCH, ImportJob, open_import
from api_server.media import store as media_store
from api_server.media.multipart import Limits, MediaForm, StoredMedia
from api_server.media.multipart import parse as parse_multipart
from api_server.media.service import MediaTasks
from api_server.settings import Settings
from api_server.tasks.serialize import dumps, json_response

router = DualSlashRouter(prefix="/api/projects", tags=["import"])

SUPPORTED = (
    "application/json, application/x-ndjson (JSONL), text/csv, text/tab-separated-values, text/plain (TXT), "
    "text/uri-list, multipart/form-data (task files .json .jsonl .csv .tsv .txt, media files: images, audio, "
    "video, PDF; or url fields), "
    "application/x-www-form-urlencoded (url fields)"
)


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        description=f"a retry with the same key answers the first response and writes nothing "
        f"(keys are kept {idempotency.TTL.total_seconds() / 3600:g} h)",
    ),
]


def _run(fn: Any, *args: Any) -> Any:
    return anyio.to_thread.run_sync(fn, *args)


async def _hashed(stream: AsyncIterator[bytes], fingerprint: idempotency.Fingerprint) -> AsyncIterator[bytes]:
    async for chunk in stream:
        fingerprint.stream(chunk)
        yield chunk


async def _line_batches(stream: AsyncIterator[bytes], size: int) -> AsyncIterator[list[bytes]]:
    pending = b""
    batch: list[bytes] = []
    async for chunk in stream:
        if not chunk:
            continue
        lines = (pending + chunk).split(b"\n") if pending else chunk.split(b"\n")
        pending = lines.pop()
        batch.extend(lines)
        if len(batch) >= size:
            yield batch
            batch = []
    if pending:
        batch.append(pending)
    if batch:
        yield batch


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _open(session: Session, user: User, project_id: int, key: str | None) -> ImportJob:
    return await _run(open_import, session, user, project_id, key)


async def _hash_upload(fingerprint: idempotency.Fingerprint, upload: UploadFile | StoredMedia) -> None:
    if isinstance(upload, StoredMedia):  # hashed while it streamed in
        fingerprint.add(upload.original_name.encode())
        fingerprint.add(upload.digest)
        fingerprint.add(b"")
        return
    fingerprint.add((upload.filename or "").encode())
    while chunk := await upload.read(1024 * 1024):
        fingerprint.stream(chunk)
    fingerprint.add(b"")
    await upload.seek(0)


async def _read_multipart(
    request: Request, session: Session, user: User, project_id: int, settings: Settings, hashing: bool
) -> MediaForm:
    """The form, media files already stored (api_server/media); access is checked before any byte is."""
    target = await _run(media_store.target_for, session, user, project_id, settings)
    limits = Limits.parse(settings.media_max_file_mb, settings.media_max_files, settings.media_types)
    return await parse_multipart(request.headers, request.stream(), target, limits, hashing=hashing)


@router.post("/{project_id}/import", response_model=ImportResponse, status_code=201)
async def import_tasks(
    project_id: int,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    return_task_ids: bool = False,
    commit_to_project: bool = True,
    preannotated_from_fields: Annotated[list[str] | None, Query()] = None,
    format: Annotated[Format | None, Query(description="overrides the Content-Type: json|jsonl|csv|tsv|txt")] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Import tasks (manager+). One bad row rejects the whole request and nothing is written."""
    if not commit_to_project:
        raise BadRequest("commit_to_project=false is not supported: imported tasks are always committed")
    if preannotated_from_fields:
        raise BadRequest(
            "preannotated_from_fields is not supported: send predictions inline in each task",
            validation_errors={"preannotated_from_fields": ["not supported"]},
        )
    media = _media_type(request)
    fmt = format or CONTENT_TYPES.get(media)
    form_types = {"multipart/form-data", "application/x-www-form-urlencoded"}
    if fmt is None and media not in form_types and media != "text/uri-list":
        shown = media or "none"
        raise UnsupportedMediaType(
            f"unsupported Content-Type {shown}; send one of: {SUPPORTED} (or name the format with ?format=)",
            validation_errors={"content-type": [f"{shown} is not supported"]},
        )

    key = idempotency.key_of(idempotency_key)
    fingerprint = idempotency.Fingerprint("import", request.query_params.multi_items(), fmt or media)
    job: ImportJob | None = None
    form: Any = None
    media_tasks: MediaTasks | None = None
    try:
        if fmt is Format.jsonl:
            job = await _open(session, user, project_id, key)
            first_line = 1
            stream = request.stream() if key is None else _hashed(request.stream(), fingerprint)
            async for lines in _line_batches(stream, BATCH):
                await _run(job.add, parsers.jsonl_items(lines, first_line, ""))
                first_line += len(lines)
            job.note_format("jsonl")
        elif fmt is not None:
            body = await request.body()
            if key is not None:
                fingerprint.stream(body)
            job = await _open(session, user, project_id, key)
            await _run(sources.add_body, job, fmt, body)
        elif media == "text/uri-list":
            body = await request.body()
            if key is not None:
                fingerprint.stream(body)
            job = await _open(session, user, project_id, key)
            await _run(sources.add_uri_list, job, body)
        else:
            if media == "multipart/form-data":
                form = await _read_multipart(request, session, user, project_id, settings, key is not None)
                items = form.items
            else:
                form = await request.form(max_files=1000, max_fields=1000)
                items = list(form.multi_items())
            files = [v for _, v in items if isinstance(v, UploadFile | StoredMedia)]
            urls = [v for k, v in items if k == "url" and isinstance(v, str) and v.strip()]
            if not files and not urls:
                raise BadRequest(
                    "the form has no files and no url fields: attach task files or give url=...",
                    validation_errors={"file": ["no file or url given"]},
                )
            if key is not None:
                for upload in files:
                    await _hash_upload(fingerprint, upload)
                for url in urls:
                    fingerprint.add(url.strip().encode())
            job = await _open(session, user, project_id, key)
            if isinstance(form, MediaForm) and form.media:
                media_tasks = MediaTasks(job, form.target)
            for upload in files:
                if isinstance(upload, StoredMedia) and media_tasks is not None:
                    await _run(media_tasks.add, upload)
                else:
                    await _run(sources.add_upload, job, upload)
            for url in urls:
                await _run(sources.add_url, job, url.strip(), settings.max_upload_bytes)

        def record(response: ImportResponse) -> None:
            if media_tasks is not None:
                media_tasks.link(session)
            if isinstance(form, MediaForm):
                # From here the files belong to the tasks being committed: a failure past this point
                # (the commit, or the statistics refresh after it) must not remove them.
                form.kept = True
            if key is not None:
                idempotency.record(
                    session,
                    user_id=user.id,
                    project_id=project_id,
                    scope="import",
                    key=key,
                    fingerprint=fingerprint.hexdigest(),
                    status_code=201,
                    response=dumps(response.model_dump(exclude_none=True)),
                )

        response = await _run(job.finish, return_task_ids, record)
    except idempotency.KeyUsed as used:  # its transaction is rolled back (open_import)
        if isinstance(form, MediaForm):
            await _run(form.discard)
        if fmt is Format.jsonl:
            async for chunk in request.stream():
                fingerprint.stream(chunk)
        status, first = idempotency.replayed(used, fingerprint.hexdigest())
        return Response(first, status_code=status, media_type="application/json")
    except BaseException:
        if isinstance(form, MediaForm) and not form.kept:
            await _run(form.discard)  # nothing was imported: the files go too
        raise
    finally:
        # The writer thread stops before the session is rolled back or closed by the request's teardown.
        if job is not None:
            await _run(job.close)
        if form is not None:
            await form.close()
    return json_response(response.model_dump(exclude_none=True), status_code=201)


@router.post("/{project_id}/import/predictions", response_model=PredictionsImportResponse, status_code=201)
async def import_predictions_endpoint(
    project_id: int,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    idempotency_key: IdempotencyKeyHeader = None,
) -> PredictionsImportResponse | Response:
    """Bulk predictions for existing tasks: a JSON list of {"task": id, "result": [...], "score", "model_version"}."""
    media = _media_type(request)
    if media not in {"application/json", ""}:
        raise UnsupportedMediaType(
            f"unsupported Content-Type {media}; send application/json",
            validation_errors={"content-type": [f"{media} is not supported"]},
        )
    key = idempotency.key_of(idempotency_key)
    body = await request.body()
    items = parsers.json_items(body)
    if key is None:
        return PredictionsImportResponse(created=await _run(import_predictions, session, user, project_id, items))
    fingerprint = idempotency.Fingerprint("predictions", request.query_params.multi_items(), media)
    fingerprint.stream(body)
    try:
        await _run(idempotency.check_unused, session, user.id, project_id, "predictions", key)
    except idempotency.KeyUsed as used:
        status, first = idempotency.replayed(used, fingerprint.hexdigest())
        return Response(first, status_code=status, media_type="application/json")
    # A successful import creates one prediction per item; the key is written in its commit.
    with idempotency.recorded_on_commit(
        session,
        user_id=user.id,
        project_id=project_id,
        scope="predictions",
        key=key,
        fingerprint=fingerprint.hexdigest(),
        status_code=201,
        response=dumps({"created": len(items)}),
    ):
        created = await _run(import_predictions, session, user, project_id, items)
    return PredictionsImportResponse(created=created)
