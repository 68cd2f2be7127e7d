"""Presigned media: task data pointing into a connected bucket, made fetchable.

Task data may hold storage URIs (`s3://bucket/key`, `gs://bucket/key`,
`azure-blob://container/key`). As in Label Studio, the API rewrites them to
`/tasks/{id}/presign/?fileuri=<base64 URI>`; that endpoint answers with a redirect to a
presigned URL (storage `presign` on, TTL `presign_ttl` minutes) or streams the object
through the API server (presign off, or the credentials cannot sign).

A URI is served only through an import storage of the same project whose bucket matches and
whose prefix holds the key, and only a key that names one object plainly: no `.` or `..`
segments, empty segments, backslashes or control characters, in the key as written or
percent-decoded, and no percent-encoded `/`. Emulators and path-style endpoints resolve `..`
in a presigned URL, so such a key could otherwise reach another prefix or another bucket.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote, unquote

from sqlalchemy.orm import Session

from api_server.common.errors import BadRequest, Forbidden, NotFound
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


def _plain_key(key: str) -> str:
    """The key itself when it names one object plainly, else Forbidden (see the module's docstring)."""
    decoded = key
    for _ in range(3):  # %252e%252e decodes twice
        decoded = unquote(decoded)
    for form in (key, decoded):
        if "\\" in form or any(ord(c) < 32 or ord(c) == 127 for c in form):
            raise Forbidden(f"fileuri: the key {key!r} holds a backslash or a control character")
        if any(segment in ("", ".", "..") for segment in form.split("/")):
            raise Forbidden(f"fileuri: the key {key!r} has an empty, '.' or '..' path segment")
    if decoded.count("/") != key.count("/"):
        raise Forbidden(f"fileuri: the key {key!r} holds a percent-encoded '/'")
    return key


def _holds(prefix: str, key: str) -> bool:
    """Whether a storage prefix holds `key`; a prefix names a folder (`data` holds `data/x`, not `data2/x`)."""
    folder = prefix.strip("/")
    return not folder or key.startswith(folder + "/")


def import_storages_of(session: Session, project_id: int) -> list[ImportStorage]:
    """The project's import storages, oldest first (uploaded media go to the first)."""
    return sorted(repository.import_storages_of(session, project_id), key=lambda s: s.id)


def import_storage(session: Session, storage_id: int) -> ImportStorage | None:
    """The import storage an uploaded media file was stored in (None once it is removed)."""
    return repository.import_storage(session, storage_id)


def storage_for(session: Session, project_id: int, uri: str) -> tuple[ImportStorage, StorageConfig, str]:
    """The project's import storage that holds `uri`: same provider and bucket, its prefix holds the key."""
    kind, bucket, key = split_uri(uri)
    key = _plain_key(key)
    same_bucket = False
    for storage in repository.import_storages_of(session, project_id):
        if storage.type != kind:
            continue
        config = StorageConfig.from_settings(storage.type, storage.settings)
        if config.bucket != bucket:
            continue
        same_bucket = True
        if _holds(config.prefix, key):
            return storage, config, key
    if same_bucket:
        raise Forbidden(f"fileuri: {key!r} is outside the prefix of project {project_id}'s storages on {bucket!r}")
    raise NotFound(f"fileuri: no storage of project {project_id} is connected to {kind} bucket {bucket!r}")


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


def chunks(stream: BinaryIO, size: int = 256 * 1024) -> Iterator[bytes]:
    """An opened object's body, piece by piece, for a streamed response; closes the object at the end."""
    try:
        while chunk := stream.read(size):
            yield chunk
    finally:
        stream.close()


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
