"""ML work as durable jobs (api_server.jobs): run by `kubelabel worker` with Redis, in-process without.

Enqueued by api_server.ml.enqueue; the handlers below are registered in api_server/wiring.py.

Kinds:
- ml.predict   {backend_id, task_id_ranges | null, only_unlabeled}: predictions, stored
- ml.event     {project_id, action, annotation_id, task_id, deleted, train}: an annotation
               event passed to every backend of the project, then training when due
- ml.train     {backend_id}: START_TRAINING, then re-prediction of unlabeled tasks
- ml.setup     {backend_id}: /health and /setup after the project changed

A backend that fails is recorded on its row (state ER) each attempt; the job is retried with
the queue's backoff while attempts remain (a model server that starts late still gets the
import's predictions), then dropped quietly: the error stays visible on the backend.
"""

from __future__ import annotations

from api_server.jobs import JobContext
from api_server.ml import remote, repository
from api_server.ml.enqueue import enqueue_train, ids_of

# Predicting a large import can take long: keep other workers from re-running it meanwhile.
PREDICT_LEASE_SECONDS = 3600


class BackendFailed(RuntimeError):
    """Retry later (the job queue's backoff); the reason is already on the backend row."""


# --- handlers ----------------------------------------------------------------------------------


def _give_up_or_retry(ctx: JobContext, error: str | None) -> None:
    if error and not ctx.is_last_attempt:
        raise BackendFailed(error)


def run_predict(ctx: JobContext) -> None:
    ranges = ctx.payload.get("task_id_ranges")
    ids = ids_of(ranges) if ranges is not None else None
    only_unlabeled = bool(ctx.payload.get("only_unlabeled", True))
    outcome = remote.predict_tasks(
        ctx.session_factory, int(ctx.payload["backend_id"]), ids, only_unlabeled=only_unlabeled
    )
    _give_up_or_retry(ctx, outcome.error)


def run_train(ctx: JobContext) -> None:
    outcome = remote.train(ctx.session_factory, int(ctx.payload["backend_id"]))
    _give_up_or_retry(ctx, outcome.error)


def run_setup(ctx: JobContext) -> None:
    """/health and /setup again (the project changed, e.g. its label config): records CO or ER."""
    remote.connect(ctx.session_factory, int(ctx.payload["backend_id"]))


def run_event(ctx: JobContext) -> None:
    p = ctx.payload
    project_id, action = int(p["project_id"]), str(p["action"])
    factory = ctx.session_factory
    with factory() as session:
        backend_ids = [b.id for b in repository.list_for_projects(session, [project_id])]
        payload = repository.event_payload(
            session, project_id, action, p.get("annotation_id"), p.get("task_id"), p.get("deleted") or []
        )
    if payload is not None and p.get("forward", True):
        for backend_id in backend_ids:
            remote.send_event(factory, backend_id, action, payload)  # failures land on the backend row
    if p.get("train"):
        with factory() as session:
            for backend_id in backend_ids:
                enqueue_train(session, backend_id)
            session.commit()
    # Events are not retried: the next annotation event carries the backend forward again,
    # and a retry would deliver this one out of order.
