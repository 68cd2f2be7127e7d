"""Objects of an export storage: every annotated task as one JSON object `<prefix>/<task id>.json`.

The object holds the task in Label Studio's JSON export layout (data, meta, annotations with
their results, ...). `run_export` is an export storage's sync: all annotated tasks, keyset-paged,
never all in memory. Writes on save (a job per fan-out of annotation events) use `write_task` too:
api_server/storages/export_on_save.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api_server.common import ls_json
from api_server.common.time import iso
from api_server.db.models import Annotation, ExportStorage, Task
from api_server.db.session import session_scope
from api_server.storages import repository
from api_server.storages.config import StorageConfig
from api_server.storages.import_sync import SyncProgress
from api_server.storages.providers import StorageError, StorageProvider

PAGE = 200


# Label Studio's export shape (common.ls_json), as the JSON export writes it.
_TASK = ls_json.writer(ls_json.TASK, ls_json.STORAGE, {"ts": iso})
_ANNOTATION = ls_json.writer(ls_json.ANNOTATION, ls_json.STORAGE, {"ts": iso})
_NESTED_KEYS = ls_json.keys_of(ls_json.TASK_NESTED, ls_json.STORAGE)


def serialize_task(task: Task, annotations: list[Annotation]) -> dict[str, Any]:
    """A task with its annotations in Label Studio's JSON export layout (predictions are not read: [])."""
    out = _TASK(task)
    nested = {"annotations": [_ANNOTATION(a) for a in annotations], "predictions": [], "drafts": []}
    out.update((key, nested[key]) for key in _NESTED_KEYS)
    return out


def object_key(config: StorageConfig, task_id: int) -> str:
    prefix = config.prefix.strip("/")
    return f"{prefix}/{task_id}.json" if prefix else f"{task_id}.json"


def write_task(
    session: Session, storage: ExportStorage, provider: StorageProvider, task: Task, anns: list[Annotation]
) -> None:
    """Write one task's object and remember its key (the link)."""
    config = StorageConfig.from_settings(storage.type, storage.settings)
    key = object_key(config, task.id)
    body = json.dumps(serialize_task(task, anns), ensure_ascii=False, default=str).encode()
    provider.write(key, body, "application/json")
    repository.upsert_export_link(session, storage.id, task.id, key)


def run_export(
    factory: sessionmaker[Session],
    storage_id: int,
    provider: StorageProvider,
    on_progress: Callable[[SyncProgress], None] | None = None,
) -> SyncProgress:
    """Write every annotated task of the storage's project; per-task failures are counted."""
    progress = SyncProgress()
    with session_scope(factory) as session:
        storage = session.get(ExportStorage, storage_id)
        if storage is None:
            raise LookupError(f"export storage {storage_id} does not exist")
        project_id = storage.project_id
    after = 0
    while True:
        with session_scope(factory) as session:
            storage = session.get(ExportStorage, storage_id)
            if storage is None:
                raise LookupError(f"export storage {storage_id} was deleted during the sync")
            ids = repository.annotated_task_ids(session, project_id, after, PAGE)
            if not ids:
                return progress
            for task, anns in repository.tasks_with_annotations(session, ids):
                progress.listed += 1
                progress.matched += 1
                try:
                    write_task(session, storage, provider, task, anns)
                    progress.created += 1
                except StorageError as exc:
                    progress.error(str(exc))
            after = ids[-1]
        if on_progress is not None:
            on_progress(progress)
