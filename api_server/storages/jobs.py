"""Storage work as durable jobs (api_server.jobs): syncs and export-on-save writes.

A sync job keeps its lease alive while it makes progress; if its process dies, the lease
runs out and another runner (the API process or `kubelabel worker`) runs the job again,
which resumes the sync (idempotent by key) instead of starting over.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_server.db.models import Job
from api_server.jobs import JobContext, enqueue, job_handler
from api_server.jobs import queue as job_queue
from api_server.storages import export as _export  # noqa: F401  (export on save: workers fan events out too)
from api_server.storages.import_sync import SyncProgress

SYNC = "storage.sync"
EXPORT_TASKS = "storage.export_tasks"
SYNC_LEASE_SECONDS = 600
HEARTBEAT_SECONDS = 60


def enqueue_sync(session: Session, direction: str, storage_id: int) -> None:
    enqueue(session, SYNC, {"direction": direction, "storage_id": storage_id}, max_attempts=3)


def sync_pending(session: Session, direction: str, storage_id: int) -> bool:
    """Whether a sync job for this storage is queued or running (so another is not needed)."""
    payloads = session.scalars(select(Job.payload).where(Job.kind == SYNC, Job.status.in_(("queued", "running"))))
    return any(p.get("direction") == direction and p.get("storage_id") == storage_id for p in payloads)


def enqueue_export(session: Session, project_id: int, task_ids: list[int]) -> Job:
    return enqueue(session, EXPORT_TASKS, {"project_id": project_id, "task_ids": sorted(task_ids)}, max_attempts=5)


@job_handler(SYNC, lease_seconds=SYNC_LEASE_SECONDS)
def run_sync_job(ctx: JobContext) -> None:
    from api_server.storages.service import run_sync

    claimed = job_queue.Claimed(ctx.job_id, ctx.kind, ctx.payload, ctx.attempt, ctx.max_attempts)
    last = time.monotonic()

    def heartbeat(_: SyncProgress) -> None:
        nonlocal last
        if time.monotonic() - last >= HEARTBEAT_SECONDS:
            job_queue.extend_lease(ctx.session_factory, claimed, SYNC_LEASE_SECONDS)
            last = time.monotonic()

    run_sync(ctx.session_factory, ctx.payload["direction"], int(ctx.payload["storage_id"]), on_progress=heartbeat)


@job_handler(EXPORT_TASKS)
def export_tasks_job(ctx: JobContext) -> None:
    from api_server.storages.export import export_tasks_now

    payload: dict[str, Any] = ctx.payload
    failures = export_tasks_now(ctx.session_factory, int(payload["project_id"]), set(payload["task_ids"]))
    if failures:
        # Retried with backoff by the job runner; the next export sync would also catch up.
        raise RuntimeError("; ".join(failures))
