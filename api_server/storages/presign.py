"""Presigned media: task data pointing into a connected bucket, made fetchable.

Task data may hold storage URIs (`s3://bucket/key`, `gs://bucket/key`,
`azure-blob://container/key`). As in Label Studio, the API rewrites them to
`/tasks/{id}/presign/?fileuri=<base64 URI>`; that endpoint answers with a redirect to a
presigned URL (storage `presign` on, TTL `presign_ttl` minutes) or streams the object
through the API server (presign off, or the credentials cannot sign).
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from api_server.common.errors import BadRequest, NotFound
from api_server.db.models import ImportStorage
from api_server.storages import repository
from api_server.storages.config import StorageConfig
from api_server.storages.credentials_store import credentials_of
from api_server.storages.providers import SCHEMES, PresignUnsupportedError, StorageProvider

PREFIXES = tuple(f"{scheme}://" for scheme in SCHEMES)


def decode_fileuri(value: str) -> str:
    """The storage URI from a `fileuri` parameter: base64 (Label Studio) or plain."""
    if "://" in value:
        return value
    padded = value + "=" * (-len(value) % 4)
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            text = decode(padded).decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        if "://" in text:
            return text
    raise BadRequest("fileuri: not a storage URI (s3://, gs:// or azure-blob://) nor its base64")


def encode_fileuri(uri: str) -> str:
    return base64.urlsafe_b64encode(uri.encode()).decode().rstrip("=")


def split_uri(uri: str) -> tuple[str, str, str]:
    """(provider kind, bucket, key) of a storage URI."""
    scheme, sep, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if not sep or scheme not in SCHEMES or not bucket or not key:
        raise BadRequest(f"fileuri: {uri!r} is not s3://, gs:// or azure-blob:// bucket/key")
    return SCHEMES[scheme], bucket, key


def storage_for(session: Session, project_id: int, uri: str) -> tuple[ImportStorage, StorageConfig, str]:
    """The project's import storage that covers `uri` (same provider and bucket, prefix preferred)."""
    kind, bucket, key = split_uri(uri)
    best: tuple[ImportStorage, StorageConfig] | None = None
    for storage in repository.import_storages_of(session, project_id):
        if storage.type != kind:
            continue
        config = StorageConfig.from_settings(storage.type, storage.settings)
        if config.bucket != bucket:
            continue
        if best is None or (key.startswith(config.prefix) and not key.startswith(best[1].prefix)):
            best = (storage, config)
    if best is None:
        raise NotFound(f"no storage of project {project_id} is connected to {kind} bucket {bucket!r}")
    return best[0], best[1], key


def provider_for(storage: ImportStorage, config: StorageConfig) -> StorageProvider:
    return config.provider(credentials_of(storage))


def presigned_url(storage: ImportStorage, config: StorageConfig, key: str) -> str | None:
    """A presigned URL, or None when the storage wants proxying or cannot sign."""
    if not config.presign:
        return None
    try:
        return provider_for(storage, config).presign(key, config.presign_ttl * 60)
    except PresignUnsupportedError:
        return None


def content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def resolve_task_data(data: dict[str, Any], task_id: int, base_url: str = "") -> dict[str, Any]:
    """Task data with storage URIs replaced by this task's presign endpoint (Label Studio's shape).

    For the tasks API to call when it serialises a task; values that are not storage URIs
    are returned unchanged, and nothing is looked up in the database.
    """
    out: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, str) and value.startswith(PREFIXES):
            out[name] = f"{base_url}/tasks/{task_id}/presign/?fileuri={quote(encode_fileuri(value))}"
        else:
            out[name] = value
    return out
