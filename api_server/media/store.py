"""Where a project's uploaded media goes: its data directory, or its import storage's bucket.

Files are stored under generated names (`<32 hex>.<ext of the sniffed type>`), so nothing of
an uploaded file's name reaches a path or a key. Local files live in
`$KUBELABEL_DATA_DIR/media/upload/<project>/`, Label Studio's layout. With an import storage
(the project's first), objects go to `<prefix>/upload/<project>/<name>` of its bucket, where
the storage's own presign and confinement rules apply; the bytes are staged on local disk
first (never in memory) and streamed to the bucket.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from api_server.common.errors import NotFound
from api_server.db.models import ImportStorage, MediaFile, User
from api_server.media import repository as media_repository
from api_server.projects.service import get_project
from api_server.settings import Settings
from api_server.storages import presign
from api_server.storages.config import StorageConfig
from api_server.storages.credentials_store import credentials_of
from api_server.storages.providers import Credentials, StorageProvider
from api_server.users.roles import Role

UPLOAD = "upload"


def media_root(settings: Settings) -> Path:
    return settings.data_dir / "media"


def project_dir(settings: Settings, project_id: int) -> Path:
    return media_root(settings) / UPLOAD / str(int(project_id))


def generated_name(extension: str) -> str:
    return uuid.uuid4().hex + extension


def url_of(project_id: int, name: str) -> str:
    """The path task data holds (Label Studio's)."""
    return f"/data/{UPLOAD}/{int(project_id)}/{name}"


@dataclass
class Bucket:
    """The import storage a project's uploads go to (plain values: used outside the session)."""

    storage_id: int
    config: StorageConfig
    credentials: Credentials
    _provider: StorageProvider | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def provider(self) -> StorageProvider:
        with self._lock:
            if self._provider is None:
                self._provider = self.config.provider(self.credentials)
            return self._provider

    def key(self, project_id: int, name: str) -> str:
        folder = self.config.prefix.strip("/")
        return f"{folder + '/' if folder else ''}{UPLOAD}/{int(project_id)}/{name}"

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()


@dataclass
class Target:
    """Where one request's media files go."""

    project_id: int
    directory: Path  # final files (local) or staged files (bucket)
    bucket: Bucket | None

    def new_path(self, name: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / name

    def put(self, path: Path, name: str, size: int, content_type: str) -> tuple[str | None, str]:
        """Move a finished file to its place: (bucket key or None, etag). Runs in a worker thread."""
        if self.bucket is None:
            return None, ""
        key = self.bucket.key(self.project_id, name)
        try:
            with path.open("rb") as stream:
                etag = self.bucket.provider.upload(key, stream, size, content_type)
        finally:
            path.unlink(missing_ok=True)
        return key, etag

    def remove(self, path: Path, key: str | None) -> None:
        """Undo a file of a request that failed (best effort: the request's error matters more)."""
        path.unlink(missing_ok=True)
        if key is not None and self.bucket is not None:
            with contextlib.suppress(Exception):
                self.bucket.provider.delete(key)

    def close(self) -> None:
        if self.bucket is not None:
            self.bucket.close()


def target_for(session: Session, user: User, project_id: int, settings: Settings) -> Target:
    """The project's media target, after checking the user may import into it (manager+).

    Its transaction ends here: none stays open while the request's body streams in."""
    get_project(session, user, project_id, Role.manager)
    storages = presign.import_storages_of(session, project_id)
    if not storages:
        target = Target(project_id, project_dir(settings, project_id), None)
    else:
        storage = storages[0]
        config = StorageConfig.from_settings(storage.type, storage.settings)
        target = Target(
            project_id, media_root(settings) / ".staging", Bucket(storage.id, config, credentials_of(storage))
        )
    session.commit()
    return target


# --- reading them back ----------------------------------------------------------------------

# One path segment of plain characters: no separators, no dot segments, no control characters.
_NAME = re.compile(r"^(?!\.{1,2}$)[^/\\\x00-\x1f\x7f]{1,255}$")


def find_upload(session: Session, user: User, project_id: int, name: str) -> MediaFile | None:
    """The record of a file uploaded to the project, None when it has none (a file copied over from
    Label Studio), after checking the caller may see the project's data (viewer+, as task data is);
    404 for a name that is not one plain file name or names a file still streaming in (`.part`)."""
    get_project(session, user, project_id, Role.viewer)
    if not _NAME.match(name) or name.endswith(".part"):
        raise NotFound(f"{name!r}: no such file in project {project_id}")
    return media_repository.file_named(session, project_id, name)


def bucket_of(session: Session, row: MediaFile) -> ImportStorage | None:
    """The import storage holding a bucket-stored upload; None once it is removed."""
    return presign.import_storage(session, row.storage_id) if row.storage_id else None
