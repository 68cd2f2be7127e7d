"""Durable background jobs: rows in the `jobs` table, run by `kubelabel worker` or in-process.

    from api_server.jobs import enqueue, JobContext

    def build_export(ctx: JobContext) -> None: ...   # registered in api_server/wiring.py

    enqueue(session, "export.build", {"project_id": 7})   # inside the caller's transaction

A handler that raises is retried with exponential backoff until `max_attempts`; raise
`PermanentJobError` to give up at once. Redis, when configured, only wakes workers up: a job
exists exactly when the transaction that enqueued it commits, and polling finds it anyway.
"""

from api_server.jobs.queue import enqueue
from api_server.jobs.registry import JobContext, PermanentJobError, job_handler

__all__ = ["JobContext", "PermanentJobError", "enqueue", "job_handler"]
