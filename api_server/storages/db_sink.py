"""The database side of an import sync: upsert task batches by (storage, key, row).

Each `submit` is one transaction: the new tasks and their links are committed together, so
after a crash every object is either fully imported (task + link) or not at all, and the
next sync skips exactly the imported ones. The unique (storage_id, key, row) constraint
guards against a concurrent sync of the same storage: the loser retries its batch.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api_server.common import retry
from api_server.db.models import ImportStorage, Project, Task
from api_server.db.session import session_scope
from api_server.storages import repository
from api_server.storages.config import StorageConfig
from api_server.storages.import_sync import BatchResult, ImportItem
from api_server.storages.import_tasks import create_tasks, lock_project

UNDEFINED_FIELD = "$undefined$"  # Label Studio's data key when the config names no object variable


def blob_field(label_config: str) -> str:
    """The task data field for object URLs: the variable of the config's first object tag."""
    from api_server.labelconfig.parser import LabelConfigError, parse

    try:
        interface = parse(label_config)
    except (LabelConfigError, ValueError):
        return UNDEFINED_FIELD
    for obj in interface.objects.values():
        if obj.variable:
            return obj.variable
    return UNDEFINED_FIELD


def submit_items(
    session: Session,
    storage: ImportStorage,
    items: list[ImportItem],
    *,
    update_changed: bool,
    user_id: int | None = None,
) -> BatchResult:
    """Upsert `items` into `storage`'s project inside the caller's transaction (no commit)."""
    config = StorageConfig.from_settings(storage.type, storage.settings)
    lock_project(session, storage.project_id)
    latest: dict[tuple[str, int], ImportItem] = {}
    for item in items:  # the last of duplicate (key, row) wins
        latest[(item.key, item.row)] = item
    existing = repository.links_for_keys(session, storage.id, (k for k, _ in latest))
    result = BatchResult()
    new: list[ImportItem] = []
    changed: list[tuple[ImportItem, int, int]] = []
    for ident, item in latest.items():
        found = existing.get(ident)
        if found is None:
            new.append(item)
        elif found[2] != item.etag and update_changed:
            changed.append((item, found[0], found[1]))
        else:
            result.unchanged += 1

    field = None
    if any(item.task is None for item in new) or any(item.task is None for item, _, _ in changed):
        project = session.get(Project, storage.project_id)
        field = blob_field(project.label_config if project else "")

    def task_of(item: ImportItem) -> dict[str, Any]:
        if item.task is None:
            return {"data": {field: config.uri(item.key)}}
        return item.task

    if new:
        labels = [config.uri(item.key) + (f" row {item.row}" if item.task is not None else "") for item in new]
        created = create_tasks(session, storage.project_id, [task_of(item) for item in new], labels, user_id)
        repository.insert_links(
            session,
            [
                (storage.id, tid, item.key, item.etag, item.row)
                for item, tid in zip(new, created.ids, strict=True)
                if tid is not None
            ],
        )
        result.created = len(new) - len(created.errors)
        result.errors = created.errors
    if changed:
        repository.update_link_etags(session, [{"id": link_id, "etag": item.etag} for item, link_id, _ in changed])
        for item, _, task_id in changed:
            values: dict[str, Any] = {"data": task_of(item)["data"]}
            if item.task is not None and "meta" in item.task:
                values["meta"] = item.task["meta"]
            session.execute(update(Task).where(Task.id == task_id).values(**values))
        result.updated = len(changed)
    return result


class DbSink:
    """ImportSink for the API server's own background sync: one transaction per batch."""

    def __init__(self, factory: sessionmaker[Session], storage_id: int) -> None:
        self._factory = factory
        self._storage_id = storage_id

    def known_etags(self, keys: list[str]) -> dict[str, str]:
        with session_scope(self._factory) as session:
            return repository.known_etags(session, self._storage_id, keys)

    def submit(self, items: list[ImportItem], *, update_changed: bool) -> BatchResult:
        def attempt() -> BatchResult:
            with session_scope(self._factory) as session:
                storage = session.get(ImportStorage, self._storage_id)
                if storage is None:
                    raise LookupError(f"import storage {self._storage_id} was deleted during the sync")
                return submit_items(session, storage, items, update_changed=update_changed)

        # A unique-key race with a concurrent sync of the same keys: the batch again, at once, 3 tries in all.
        return retry.call(attempt, on=(IntegrityError,), delays=(0.0, 0.0))
