"""Wiring of the job queue into the API app: metrics, the commit notifier, the in-process runner."""

from __future__ import annotations

from fastapi import FastAPI

from api_server import events
from api_server.jobs import dispatch, registry
from api_server.jobs.metrics import QueueDepth
from api_server.jobs.redis_wakeups import RedisWakeups
from api_server.jobs.runner import JobRunner


def attach_job_runner(app: FastAPI) -> None:
    settings = app.state.settings
    app.state.metrics_registry.register(QueueDepth(app.state.session_factory))
    for collector in registry.collectors():
        app.state.metrics_registry.register(collector(app.state.session_factory))
    app.state.job_runner = None

    @app.on_event("startup")
    def _start_jobs() -> None:
        wakeups = RedisWakeups(settings.redis_url, settings.redis_prefix) if settings.redis_url else None
        runner = JobRunner(app.state.session_factory, settings, wakeups=wakeups)
        dispatch.register(app.state.engine, runner.notify)
        events.on_commit(app.state.engine, runner.wake_events)
        app.state.job_runner = runner.start()

    @app.on_event("shutdown")
    def _stop_jobs() -> None:
        runner: JobRunner | None = app.state.job_runner
        dispatch.unregister(app.state.engine)
        events.forget(app.state.engine)
        if runner is not None:
            runner.stop()
            app.state.job_runner = None
