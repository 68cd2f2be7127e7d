"""Enqueue storage jobs inside the caller's transaction (handlers: api_server.storages.jobs)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_server.db.models import Job
from api_server.jobs import enqueue

SYNC = "storage.sync"
EXPORT_TASKS = "storage.export_tasks"


def enqueue_sync(session: Session, direction: str, storage_id: int) -> None:
    enqueue(session, SYNC, {"direction": direction, "storage_id": storage_id}, max_attempts=3)


def sync_pending(session: Session, direction: str, storage_id: int) -> bool:
    """Whether a sync job for this storage is queued or running (so another is not needed)."""
    payloads = session.scalars(select(Job.payload).where(Job.kind == SYNC, Job.status.in_(("queued", "running"))))
    return any(p.get("direction") == direction and p.get("storage_id") == storage_id for p in payloads)


def enqueue_export(session: Session, project_id: int, task_ids: list[int]) -> Job:
    return enqueue(session, EXPORT_TASKS, {"project_id": project_id, "task_ids": sorted(task_ids)}, max_attempts=5)
