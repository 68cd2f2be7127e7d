"""Storage work as durable jobs (api_server.jobs): the handlers of syncs and export-on-save writes.

Enqueued by api_server.storages.enqueue; registered in api_server/wiring.py.
A sync job keeps its lease alive while it makes progress; if its process dies, the lease
runs out and another runner (the API process or `kubelabel worker`) runs the job again,
which resumes the sync (idempotent by key) instead of starting over.
"""

from __future__ import annotations

import time
from typing import Any

from api_server.jobs import JobContext
from api_server.jobs import queue as job_queue
from api_server.storages.export_on_save import export_tasks_now
from api_server.storages.import_sync import SyncProgress
from api_server.storages.service import run_sync

SYNC_LEASE_SECONDS = 600
HEARTBEAT_SECONDS = 60


def run_sync_job(ctx: JobContext) -> None:
    claimed = job_queue.Claimed(ctx.job_id, ctx.kind, ctx.payload, ctx.attempt, ctx.max_attempts)
    last = time.monotonic()

    def heartbeat(_: SyncProgress) -> None:
        nonlocal last
        if time.monotonic() - last >= HEARTBEAT_SECONDS:
            job_queue.extend_lease(ctx.session_factory, claimed, SYNC_LEASE_SECONDS)
            last = time.monotonic()

    run_sync(ctx.session_factory, ctx.payload["direction"], int(ctx.payload["storage_id"]), on_progress=heartbeat)


def export_tasks_job(ctx: JobContext) -> None:
    payload: dict[str, Any] = ctx.payload
    failures = export_tasks_now(ctx.session_factory, int(payload["project_id"]), set(payload["task_ids"]))
    if failures:
        # Retried with backoff by the job runner; the next export sync would also catch up.
        raise RuntimeError("; ".join(failures))
