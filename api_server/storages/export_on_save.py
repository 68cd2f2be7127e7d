"""Export on save: annotation changes written to the project's export storages, off the request path.

`on_event` (subscribed in api_server/wiring.py) sees annotation events when they are fanned out
(api_server/events.py: only committed changes) and queues one job per project for all the tasks
of one fan-out; the job (api_server/storages/jobs.py) calls `export_tasks_now`, which writes each
task's object (api_server/storages/bucket_export.py), retried if the bucket is down. When the
last annotation of a task is deleted and `can_delete_objects` is set, the object is deleted.
Storages with `export_on_save` off are left to their sync.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from api_server import events
from api_server.db.models import Annotation, Task
from api_server.db.session import session_scope
from api_server.storages import repository
from api_server.storages.bucket_export import object_key, write_task
from api_server.storages.config import StorageConfig
from api_server.storages.credentials_store import credentials_of
from api_server.storages.enqueue import enqueue_export
from api_server.storages.providers import StorageError

log = logging.getLogger(__name__)

SAVE_ACTIONS = {"ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED"}
DELETE_ACTIONS = {"ANNOTATION_DELETED", "ANNOTATIONS_DELETED"}
ACTIONS = SAVE_ACTIONS | DELETE_ACTIONS
# Who listens: the subscriber runs only for projects with an export storage.
LISTENERS = repository.EXPORT_STORAGES_OF_PROJECT


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
                        write_task(session, storage, provider, task, anns[tid])
                    elif storage.can_delete_objects:
                        provider.delete(object_key(config, tid))
                        repository.delete_export_link(session, storage.id, tid)
            except StorageError as exc:
                log.warning("export storage %s: write on save failed: %s", storage.id, exc)
                failures.append(str(exc))
    return failures


_BATCH = "kubelabel.storages.export_batch"


def on_event(session: Session, project_id: int, action: str, objects: dict[str, Any]) -> None:
    """events subscriber: gathers the tasks of the fan-out's annotation events per project, and
    queues one export job per project for them when the batch ends (in its transaction)."""
    if action not in SAVE_ACTIONS and action not in DELETE_ACTIONS:
        return
    task_ids = _task_ids(objects)
    if not task_ids:
        return
    batch: dict[int, set[int] | None] = session.info.setdefault(_BATCH, {})
    if project_id not in batch:
        storages = repository.export_storages_of(session, project_id)
        batch[project_id] = set() if any(s.settings.get("export_on_save", True) for s in storages) else None
        events.at_batch_end(session, _BATCH, lambda s: _enqueue_batch(s, batch))
    pending = batch[project_id]
    if pending is not None:
        pending |= task_ids


def _enqueue_batch(session: Session, batch: dict[int, set[int] | None]) -> None:
    for project_id, task_ids in batch.items():
        if task_ids:
            enqueue_export(session, project_id, sorted(task_ids))
