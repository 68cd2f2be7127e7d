"""`GET /data/upload/{project}/{name}`: an uploaded media file, for the project's members (Label Studio's path).

The user comes from the project's one authentication dependency (deps.current_user), so
whatever that accepts (the API token header; the page's session cookie) works here too, as
an `<img>` or `<audio>` of the labeling page needs. Local files are streamed with Range
support (seeking in audio and video); bucket objects are a redirect to a presigned URL, or
streamed through when the storage does not presign. Every answer carries `nosniff`; SVG is
sent as an attachment under a sandboxing policy, so an uploaded file never runs as a page
of this origin (it still shows in an `<img>`).

Files that sit in `$KUBELABEL_DATA_DIR/media/upload/<project>/` without a record (copied
over from a Label Studio instance) are served too, their type sniffed from their bytes.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from api_server.common.errors import NotFound
from api_server.common.routing import DualSlashRouter
from api_server.db.models import ImportStorage, MediaFile
from api_server.deps import CurrentUser, SessionDep, SettingsDep
from api_server.media import sniff, store
from api_server.media.store import project_dir
from api_server.storages import presign
from api_server.storages.config import StorageConfig
from api_server.storages.providers import (
    BucketNotFoundError,
    ObjectNotFoundError,
    PresignUnsupportedError,
    StorageError,
    StorageProvider,
)

router = DualSlashRouter(tags=["media"])

# Names this server generates: served only through their record, so the files of a deleted
# project (its records gone with it) never reach a later project that gets the same id.
_GENERATED = re.compile(r"^[0-9a-f]{32}\.[a-z0-9]+$")
# Served inline (in the page and as a top-level view); anything else is an attachment.
_INLINE = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff", "application/pdf")
_SANDBOX = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"


def _inline(content_type: str) -> bool:
    return content_type in _INLINE or content_type.startswith(("audio/", "video/"))


def _headers(content_type: str) -> dict[str, str]:
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}
    if not _inline(content_type):
        headers["Content-Security-Policy"] = _SANDBOX
    return headers


def _file(path: Path, content_type: str, display_name: str) -> Response:
    return FileResponse(
        path,
        media_type=content_type,
        filename=display_name,
        content_disposition_type="inline" if _inline(content_type) else "attachment",
        headers=_headers(content_type),
    )


def _sniffed(path: Path) -> str:
    with path.open("rb") as f:
        return sniff.sniff(f.read(sniff.HEAD_BYTES), path.name) or "application/octet-stream"


_PROVIDERS: OrderedDict[tuple[int, str], StorageProvider] = OrderedDict()
_PROVIDERS_LOCK = threading.Lock()


def _provider(storage: ImportStorage, config: StorageConfig) -> StorageProvider:
    """The storage's client, kept per process: building one (boto3) costs far more than presigning.

    Keyed by the row's update time, so changed settings or credentials build a new one.
    """
    key = (storage.id, str(storage.updated_at))
    with _PROVIDERS_LOCK:
        provider = _PROVIDERS.get(key)
        if provider is not None:
            _PROVIDERS.move_to_end(key)
            return provider
    provider = presign.provider_for(storage, config)
    with _PROVIDERS_LOCK:
        _PROVIDERS[key] = provider
        while len(_PROVIDERS) > 16:
            _PROVIDERS.popitem(last=False)[1].close()
    return provider


def _from_bucket(session: Any, row: MediaFile) -> Response:
    storage = store.bucket_of(session, row)
    if storage is None or row.key is None:
        raise NotFound(f"{row.name}: its import storage was removed")
    config = StorageConfig.from_settings(storage.type, storage.settings)
    disposition = "inline" if _inline(row.content_type) else "attachment"
    try:
        provider = _provider(storage, config)
        if _inline(row.content_type) and config.presign:  # SVG always passes through our headers
            try:
                url = provider.presign(row.key, config.presign_ttl * 60)
                return RedirectResponse(url, status_code=303, headers={"Cache-Control": "private, max-age=60"})
            except PresignUnsupportedError:
                pass  # streamed through instead
        stream = provider.open(row.key)
    except (ObjectNotFoundError, BucketNotFoundError):
        raise NotFound(f"{row.name}: the object {row.key!r} is missing from {config.bucket!r}") from None
    except StorageError as exc:
        raise NotFound(f"{row.name}: the storage cannot be read ({exc})") from None

    headers = _headers(row.content_type)
    headers["Content-Disposition"] = f"{disposition}; filename*=utf-8''{quote(row.original_name or row.name)}"
    headers["Content-Length"] = str(row.size)
    return StreamingResponse(presign.chunks(stream), media_type=row.content_type, headers=headers)


@router.get(
    "/data/upload/{project_id}/{name}",
    summary="An uploaded media file",
    responses={200: {"content": {"application/octet-stream": {}}}, 303: {"description": "presigned bucket URL"}},
)
def uploaded_file(
    project_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)],
    name: str,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
) -> Response:
    """A media file uploaded to the project (viewer+, as task data is): streamed, Range requests honoured."""
    row = store.find_upload(session, user, project_id, name)
    if row is not None and row.key is not None:
        return _from_bucket(session, row)
    path = project_dir(settings, project_id) / name
    if not path.is_file():
        raise NotFound(f"{name}: no such file in project {project_id}")
    if row is not None:
        return _file(path, row.content_type, row.original_name or name)
    if _GENERATED.match(name):
        raise NotFound(f"{name}: no such file in project {project_id}")
    return _file(path, _sniffed(path), name)
