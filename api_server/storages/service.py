"""Storage rules: create/update (upsert by external name), validate, start syncs, run them.

Credentials are write-only: stored in the row's `credentials` document and never part of
`to_public`. A sync runs in the background (runner.py) and records its outcome in the
Label Studio status fields: initialized -> queued -> in_progress -> completed |
completed_with_errors | failed, with last_sync, last_sync_count, traceback and meta.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api_server.common.errors import BadRequest, Conflict, NotFound
from api_server.common.secrets import scrubbed
from api_server.common.time import utcnow
from api_server.db.models import ExportStorage, ImportStorage, User
from api_server.db.session import session_scope
from api_server.projects.service import get_project
from api_server.storages import enqueue, repository
from api_server.storages.bucket_export import run_export
from api_server.storages.config import KINDS, StorageConfig, credentials_from_fields, credentials_to_fields
from api_server.storages.credentials_store import credentials_of
from api_server.storages.db_sink import DbSink, submit_items
from api_server.storages.import_sync import BatchResult, ImportItem, SyncProgress, run_import
from api_server.storages.providers import StorageError, check_endpoint
from api_server.storages.schemas import LinkBatch, StoragePayload
from api_server.users.roles import Role

log = logging.getLogger(__name__)

StorageRow = ImportStorage | ExportStorage
TITLES = {"s3": "AWS S3", "gcs": "Google Cloud Storage", "azure": "Microsoft Azure"}


# -- public shape ----------------------------------------------------------------------------


def to_public(row: StorageRow, direction: str) -> dict[str, Any]:
    settings = StorageConfig.from_settings(row.type, row.settings).to_settings()
    if direction == "export":
        for key in ("use_blob_urls", "presign", "presign_ttl", "recursive_scan", "update_changed"):
            settings.pop(key, None)
    else:
        settings.pop("export_on_save", None)
        settings.pop("can_delete_objects", None)
    out: dict[str, Any] = {
        "id": row.id,
        "type": row.type,
        "project": row.project_id,
        "title": row.title,
        "description": row.description,
        "external_name": row.external_name,
        **settings,
        "status": row.status,
        "last_sync": row.last_sync.isoformat() if row.last_sync else None,
        "last_sync_count": row.last_sync_count,
        "last_sync_job": row.last_sync_job,
        "traceback": scrubbed(row.traceback, *(row.credentials or {}).values()),
        "meta": row.meta or {},
        "synchronizable": True,
        # Write-only: which credential fields hold a value, never the values.
        "credentials_set": sorted(k for k, v in (row.credentials or {}).items() if v),
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }
    if isinstance(row, ExportStorage):
        out["can_delete_objects"] = row.can_delete_objects
    return out


# -- lookup and access -----------------------------------------------------------------------


def _check_kind(type_: str) -> None:
    if type_ not in KINDS:
        raise NotFound(f"unknown storage type {type_!r}")


def get_storage(session: Session, user: User, direction: str, type_: str, storage_id: int) -> StorageRow:
    _check_kind(type_)
    row = repository.get(session, direction, type_, storage_id)
    if row is None:
        raise NotFound(f"{direction} storage {type_}/{storage_id} does not exist")
    get_project(session, user, row.project_id, Role.manager)
    return row


def list_storages(session: Session, user: User, direction: str, type_: str, project_id: int | None) -> list[StorageRow]:
    _check_kind(type_)
    if project_id is not None:
        get_project(session, user, project_id, Role.manager)
    elif user.role != Role.admin.value:
        raise BadRequest("project: required (the id of the project whose storages to list)")
    return repository.list_for_project(session, direction, type_, project_id)


# -- create / update / delete / validate ------------------------------------------------------


def _config(type_: str, settings: dict[str, Any]) -> StorageConfig:
    try:
        config = StorageConfig.from_settings(type_, settings)
    except StorageError as exc:
        raise BadRequest(str(exc)) from None
    if config.endpoint:
        # Checked when saved (a name that does not resolve yet may be a Service still to come)
        # and again before every client is built (providers.make_provider).
        name = "s3_endpoint" if type_ == "s3" and settings.get("s3_endpoint") else "endpoint"
        try:
            check_endpoint(config.endpoint, type_, unresolved_ok=True)
        except StorageError as exc:
            raise BadRequest(f"{name}: {exc}", validation_errors={name: [str(exc)]}) from None
    return config


def create_storage(session: Session, user: User, direction: str, type_: str, payload: StoragePayload) -> StorageRow:
    """Create a storage; with `external_name`, update the existing one of that name instead."""
    _check_kind(type_)
    if payload.external_name:
        existing = repository.by_external_name(session, direction, payload.external_name)
        if existing is not None:
            if existing.type != type_ or (payload.project is not None and existing.project_id != payload.project):
                raise Conflict(
                    f"external_name {payload.external_name!r} already names a {existing.type} storage "
                    f"of project {existing.project_id}"
                )
            return update_storage(session, user, direction, type_, existing.id, payload)
    if payload.project is None:
        raise BadRequest("project: required", validation_errors={"project": ["required"]})
    get_project(session, user, payload.project, Role.manager)
    settings = payload.settings()
    if direction == "export":
        settings.pop("use_blob_urls", None)
    config = _config(type_, settings)
    cls = repository.model(direction)
    row = cls(
        project_id=payload.project,
        type=type_,
        title=payload.title or "",
        description=payload.description or "",
        settings=config.to_settings(),
        credentials=payload.secrets(),
        external_name=payload.external_name or None,
    )
    if isinstance(row, ExportStorage):
        row.can_delete_objects = bool(payload.can_delete_objects)
    session.add(row)
    session.commit()
    return row


def update_storage(
    session: Session, user: User, direction: str, type_: str, storage_id: int, payload: StoragePayload
) -> StorageRow:
    row = get_storage(session, user, direction, type_, storage_id)
    settings = {**(row.settings or {}), **payload.settings()}
    row.settings = _config(type_, settings).to_settings()
    if payload.secrets():
        row.credentials = {**(row.credentials or {}), **payload.secrets()}
    for name in ("title", "description"):
        value = getattr(payload, name)
        if value is not None:
            setattr(row, name, value)
    sent = payload.model_fields_set
    for name in ("status", "last_sync", "last_sync_count", "last_sync_job", "traceback", "meta"):
        if name in sent:
            setattr(row, name, getattr(payload, name) if name != "meta" else (payload.meta or {}))
    if isinstance(row, ExportStorage) and payload.can_delete_objects is not None:
        row.can_delete_objects = payload.can_delete_objects
    session.commit()
    return row


def delete_storage(session: Session, user: User, direction: str, type_: str, storage_id: int) -> None:
    """Delete the storage record; its tasks stay (their links go with it)."""
    row = get_storage(session, user, direction, type_, storage_id)
    session.delete(row)
    session.commit()


def validate_storage(
    session: Session, user: User, direction: str, type_: str, payload: StoragePayload, storage_id: int | None
) -> None:
    """Check that the bucket exists and the credentials work, from the payload (over an existing row)."""
    _check_kind(type_)
    settings = payload.settings()
    secrets = payload.secrets()
    if storage_id is not None:
        row = get_storage(session, user, direction, type_, storage_id)
        settings = {**(row.settings or {}), **settings}
        secrets = {**(row.credentials or {}), **secrets}
    elif payload.project is not None:
        get_project(session, user, payload.project, Role.manager)
    config = _config(type_, settings)
    if config.account_name:
        secrets.setdefault("account_name", config.account_name)
    try:
        config.provider(credentials_from_fields(type_, secrets)).validate()
    except (StorageError, ValueError) as exc:  # ValueError: an SDK refusing a setting (never a 500)
        shown = scrubbed(str(exc), *(v for k, v in secrets.items() if k != "account_name"))
        raise BadRequest(shown or "") from None


# -- batch links (used by `kubelabel sync`) ---------------------------------------------------


def known_keys(session: Session, user: User, type_: str, storage_id: int, keys: list[str]) -> dict[str, str]:
    row = get_storage(session, user, "import", type_, storage_id)
    return repository.known_etags(session, row.id, keys)


def submit_links(session: Session, user: User, type_: str, storage_id: int, batch: LinkBatch) -> BatchResult:
    row = get_storage(session, user, "import", type_, storage_id)
    assert isinstance(row, ImportStorage)
    items = []
    for item in batch.items:
        if item.task is not None and not isinstance(item.task.get("data"), dict):
            raise BadRequest(f"items: task of {item.key} row {item.row} has no 'data' object")
        items.append(ImportItem(item.key, item.etag, item.row, item.task))
    result = submit_items(session, row, items, update_changed=batch.update_changed, user_id=user.id)
    session.commit()
    return result


# -- sync -----------------------------------------------------------------------------------


def start_sync(session: Session, user: User, direction: str, type_: str, storage_id: int) -> StorageRow:
    """Queue a sync job and return at once; a job runner does the work (never this request)."""
    row = get_storage(session, user, direction, type_, storage_id)
    if enqueue.sync_pending(session, direction, row.id):
        return row
    row.status = "queued"
    row.traceback = None
    enqueue.enqueue_sync(session, direction, row.id)
    session.commit()
    return row


def _finish(factory: sessionmaker[Session], direction: str, storage_id: int, **values: Any) -> None:
    with session_scope(factory) as session:
        row = repository.get_for_update(session, direction, storage_id)
        if row is not None:
            for name, value in values.items():
                setattr(row, name, value)


def run_sync(
    factory: sessionmaker[Session],
    direction: str,
    storage_id: int,
    on_progress: Callable[[SyncProgress], None] | None = None,
) -> SyncProgress | None:
    """One complete sync of a storage, recording its status (the background job's body)."""
    with session_scope(factory) as session:
        row = repository.get_for_update(session, direction, storage_id)
        if row is None:
            return None
        row.status = "in_progress"
        config = StorageConfig.from_settings(row.type, row.settings)
        credentials = credentials_of(row)
    try:
        provider = config.provider(credentials)
        provider.validate()
        if direction == "export":
            progress = run_export(factory, storage_id, provider, on_progress=on_progress)
        else:
            progress = run_import(provider, config, DbSink(factory, storage_id), on_progress=on_progress)
    except (StorageError, LookupError) as exc:
        shown = scrubbed(str(exc), *credentials_to_fields(config.type, credentials).values())
        _finish(factory, direction, storage_id, status="failed", traceback=shown)
        return None
    except Exception as exc:
        _finish(factory, direction, storage_id, status="failed", traceback=f"internal error: {type(exc).__name__}")
        raise
    _finish(
        factory,
        direction,
        storage_id,
        status=progress.status,
        last_sync=utcnow(),
        last_sync_count=progress.created + progress.updated,
        traceback="\n".join(progress.error_samples) or None,
        meta=progress.summary(),
    )
    return progress
