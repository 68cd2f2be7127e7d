"""Export storages: every annotated task written as one JSON object named `<prefix>/<task id>.json`.

The object holds the task in Label Studio's JSON export layout (data, meta, annotations with
their results, ...). Writes happen on sync (all annotated tasks, keyset-paged, never all in
memory) and, when `export_on_save` is set, in a job queued when annotation events are fanned out
(api_server/events.py: only for committed changes, off the request path; one job per project
for all the tasks of one fan-out, retried if the bucket is down); when the last annotation of a
task is deleted and `can_delete_objects` is set, the object is deleted.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from api_server import events
from api_server.common.time import iso
from api_server.db.models import Annotation, ExportStorage, Task
from api_server.db.session import session_scope
from api_server.storages import repository
from api_server.storages.config import StorageConfig
from api_server.storages.credentials_store import credentials_of
from api_server.storages.import_sync import SyncProgress
from api_server.storages.providers import StorageError, StorageProvider

log = logging.getLogger(__name__)

PAGE = 200
SAVE_ACTIONS = {"ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED"}
DELETE_ACTIONS = {"ANNOTATION_DELETED", "ANNOTATIONS_DELETED"}


def serialize_task(task: Task, annotations: list[Annotation]) -> dict[str, Any]:
    """A task with its annotations in Label Studio's JSON export layout."""
    return {
        "id": task.id,
        "data": task.data,
        "meta": task.meta or {},
        "annotations": [
            {
                "id": a.id,
                "completed_by": a.completed_by_id,
                "result": a.result,
                "was_cancelled": a.was_cancelled,
                "ground_truth": a.ground_truth,
                "created_at": iso(a.created_at),
                "updated_at": iso(a.updated_at),
                "draft_created_at": iso(a.draft_created_at),
                "lead_time": a.lead_time,
                "prediction": {},
                "result_count": len(a.result or []),
                "import_id": a.import_id,
                "last_action": a.last_action,
                "task": task.id,
                "project": a.project_id,
                "updated_by": a.updated_by_id,
                "parent_prediction": a.parent_prediction_id,
                "parent_annotation": a.parent_annotation_id,
            }
            for a in annotations
        ],
        "predictions": [],
        "drafts": [],
        "file_upload": None,
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
        "inner_id": task.inner_id,
        "total_annotations": task.total_annotations,
        "cancelled_annotations": task.cancelled_annotations,
        "total_predictions": task.total_predictions,
        "project": task.project_id,
        "updated_by": task.updated_by_id,
    }


def object_key(config: StorageConfig, task_id: int) -> str:
    prefix = config.prefix.strip("/")
    return f"{prefix}/{task_id}.json" if prefix else f"{task_id}.json"


def _write(
    session: Session, storage: ExportStorage, provider: StorageProvider, task: Task, anns: list[Annotation]
) -> None:
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
                    _write(session, storage, provider, task, anns)
                    progress.created += 1
                except StorageError as exc:
                    progress.error(str(exc))
            after = ids[-1]
        if on_progress is not None:
            on_progress(progress)


# -- on annotation save / delete ------------------------------------------------------------


def _task_ids(objects: dict[str, Any]) -> set[int]:
    found: set[int] = set()
    for key in ("annotation", "annotations", "task", "tasks"):
        value = objects.get(key)
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is None:
                continue
            if key.startswith("task"):
                found.add(int(item if isinstance(item, int) else item["id"] if isinstance(item, dict) else item.id))
            elif isinstance(item, Annotation):
                found.add(item.task_id)
            elif isinstance(item, dict) and isinstance(item.get("task"), int):
                found.add(item["task"])
    for first, last in objects.get("task_id_ranges") or ():  # bulk events carry id ranges
        found.update(range(int(first), int(last) + 1))
    return found


# Two export jobs of one project must not overlap: one that read a task before its annotation
# changed could write after one that read it since, and leave the older version in the bucket.
# Read-then-write runs under a per-project lock, in this process and, on PostgreSQL, across
# processes (an advisory lock held by the reading transaction); whichever job runs last then read
# the newest committed state.
_PROJECT_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
_ADVISORY_CLASS = 0x6B6C6578  # "klex": this lock's namespace among advisory locks


def _project_lock(project_id: int) -> threading.Lock:
    with _LOCKS_GUARD:
        return _PROJECT_LOCKS.setdefault(project_id, threading.Lock())


def export_tasks_now(factory: sessionmaker[Session], project_id: int, task_ids: set[int]) -> list[str]:
    """Write (or, with no annotation left and when allowed, delete) these tasks' objects; returns failures."""
    with _project_lock(project_id):
        return _export_tasks_locked(factory, project_id, task_ids)


def _export_tasks_locked(factory: sessionmaker[Session], project_id: int, task_ids: set[int]) -> list[str]:
    failures: list[str] = []
    with session_scope(factory) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                text("SELECT pg_advisory_xact_lock(:cls, :project)"), {"cls": _ADVISORY_CLASS, "project": project_id}
            )
        storages = [
            s for s in repository.export_storages_of(session, project_id) if s.settings.get("export_on_save", True)
        ]
        if not storages:
            return failures
        tasks = {t.id: t for t in session.scalars(select(Task).where(Task.id.in_(task_ids)))}
        anns: dict[int, list[Annotation]] = {tid: [] for tid in task_ids}
        for ann in session.scalars(select(Annotation).where(Annotation.task_id.in_(task_ids)).order_by(Annotation.id)):
            anns[ann.task_id].append(ann)
        for storage in storages:
            config = StorageConfig.from_settings(storage.type, storage.settings)
            try:
                provider = config.provider(credentials_of(storage))
                for tid in sorted(task_ids):
                    task = tasks.get(tid)
                    if task is not None and anns[tid]:
                        _write(session, storage, provider, task, anns[tid])
                    elif storage.can_delete_objects:
                        provider.delete(object_key(config, tid))
                        repository.delete_export_link(session, storage.id, tid)
            except StorageError as exc:
                log.warning("export storage %s: write on save failed: %s", storage.id, exc)
                failures.append(str(exc))
    return failures


_BATCH = "kubelabel.storages.export_batch"


def _on_event(session: Session, project_id: int, action: str, objects: dict[str, Any]) -> None:
    """Queue an export job in the fan-out's transaction: one per project, growing with each event of the batch."""
    if action not in SAVE_ACTIONS and action not in DELETE_ACTIONS:
        return
    task_ids = _task_ids(objects)
    if not task_ids:
        return
    batch: dict[int, Any] = session.info.setdefault(_BATCH, {})
    if project_id not in batch:
        storages = repository.export_storages_of(session, project_id)
        batch[project_id] = None if not any(s.settings.get("export_on_save", True) for s in storages) else []
    pending = batch[project_id]
    if pending is None:
        return
    from api_server.storages.jobs import enqueue_export

    if pending:  # the job queued earlier in this transaction takes these tasks too
        job = pending[0]
        job.payload = {**job.payload, "task_ids": sorted(set(job.payload["task_ids"]) | task_ids)}
        return
    pending.append(enqueue_export(session, project_id, sorted(task_ids)))


events.subscribe(_on_event, actions=SAVE_ACTIONS | DELETE_ACTIONS, listeners=repository.EXPORT_STORAGES_OF_PROJECT)
