"""Every event subscriber, job handler, pump, metrics collector and maintenance task, in one place.

Nothing registers itself on import: a process calls `wire()` before it publishes events or runs
jobs, and this module is where a reader finds all the work that runs off the request path.
Callers: the API app (api_server/app.py), `kubelabel serve`'s start-up (api_server/server.py: the
provisioned project's import publishes events) and `kubelabel worker` (api_server/worker.py).
`kubelabel sync` talks to the API over HTTP and runs none of it.

A subscriber left out is not an error anywhere else: `events.publish` writes no outbox row for an
event nobody listens to. tests/unit/api/test_wiring.py pins the lists below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select

from api_server import events
from api_server.jobs import registry
from api_server.ml import enqueue as ml_kinds
from api_server.ml import jobs as ml_jobs
from api_server.ml import triggers as ml_triggers
from api_server.storages import enqueue as storage_kinds
from api_server.storages import export_on_save
from api_server.storages import jobs as storage_jobs
from api_server.webhooks import delivery as webhook_delivery
from api_server.webhooks import engine as webhook_engine
from api_server.webhooks import service as webhook_service

# Registers, on import, how the fan-out reads the annotations the labeling loop's PostgreSQL
# function wrote into the outbox (events.resolver at the bottom of that module).
from api_server.workflow import outbox as _workflow_outbox  # noqa: F401


@dataclass(frozen=True)
class Subscription:
    handler: events.Subscriber
    actions: frozenset[str] | None  # None: every action
    listeners: Select[*tuple[Any, ...]] | None  # a query that finds a row when the project has someone to tell
    hears: events.Hears | None = None  # whether it acts on an action in a project (before decoding an event)
    prepare: events.Prepare | None = None  # makes a whole fan-out batch's writes at once when it can


@dataclass(frozen=True)
class JobHandler:
    kind: str
    fn: registry.Handler
    lease_seconds: int | None = None  # None: KUBELABEL_JOB_LEASE_SECONDS


# Called at each fan-out of the event outbox, in this order, in the fan-out's transaction.
SUBSCRIBERS: tuple[Subscription, ...] = (
    # One pending delivery per listening webhook (the delivery engine sends it).
    Subscription(
        webhook_service.on_event, None, webhook_service.LISTENERS, webhook_service.hears, webhook_service.prepare
    ),
    # ML backends: predict imported tasks, pass annotations on, start training (jobs below).
    Subscription(ml_triggers.on_event, frozenset(ml_triggers.WATCHED), ml_triggers.LISTENERS),
    # Export storages with export_on_save: one export job per project and fan-out.
    Subscription(export_on_save.on_event, frozenset(export_on_save.ACTIONS), export_on_save.LISTENERS),
)

JOB_HANDLERS: tuple[JobHandler, ...] = (
    JobHandler(ml_kinds.PREDICT, ml_jobs.run_predict, ml_jobs.PREDICT_LEASE_SECONDS),
    JobHandler(ml_kinds.TRAIN, ml_jobs.run_train, ml_jobs.PREDICT_LEASE_SECONDS),
    JobHandler(ml_kinds.SETUP, ml_jobs.run_setup),
    JobHandler(ml_kinds.EVENT, ml_jobs.run_event),
    JobHandler(storage_kinds.SYNC, storage_jobs.run_sync_job, storage_jobs.SYNC_LEASE_SECONDS),
    JobHandler(storage_kinds.EXPORT_TASKS, storage_jobs.export_tasks_job),
    # Jobs queued before the delivery engine existed: they finish harmlessly.
    JobHandler(webhook_delivery.LEGACY_KIND, webhook_delivery.legacy_deliver),
)

# Built by each process that runs jobs, stepped by its event thread after every fan-out.
PUMPS: tuple[registry.PumpFactory, ...] = (webhook_engine.DeliveryEngine,)

# Registered with the API app's /metrics (built with its session factory).
COLLECTORS: tuple[registry.Collector, ...] = (webhook_engine.BacklogMetrics,)

# Hourly upkeep, run by one job runner thread.
MAINTENANCE: tuple[registry.Maintenance, ...] = (webhook_delivery.purge_history,)


def wire() -> None:
    """Register everything above (idempotent: each app the tests build calls it again)."""
    for sub in SUBSCRIBERS:
        events.subscribe(
            sub.handler, actions=sub.actions, listeners=sub.listeners, hears=sub.hears, prepare=sub.prepare
        )
    for handler in JOB_HANDLERS:
        registry.register(handler.kind, handler.fn, lease_seconds=handler.lease_seconds)
    for pump in PUMPS:
        registry.pump(pump)
    for collector in COLLECTORS:
        registry.collector(collector)
    for task in MAINTENANCE:
        registry.maintenance(task)
