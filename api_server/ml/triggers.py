"""React to project events: predict imported tasks, pass annotations on, start training.

Subscribed to api_server.events in api_server/wiring.py. Events are fanned out after
their change committed, off the request path (api_server/events.py); each handler only inspects
the event (cheap queries) and enqueues jobs in the fan-out's transaction (api_server.ml.enqueue),
so annotators and imports never wait on a model server and no work is lost or run for a change
that was rolled back. The training clock counts annotations up to the event's own (the count
when it happened), since more may have been committed by the time it is fanned out.

Training cadence: with `min_annotations_to_start_training = N > 0` the project's N-th, 2N-th,
... submitted annotation starts training; with `start_training_on_annotation_update` every
created or updated annotation does. Independently, every annotation event is passed to the
project's backends (Label Studio's ML webhook), so a backend can also learn incrementally.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api_server.db.models import Project
from api_server.ml import enqueue, repository

FORWARDED = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED", "ANNOTATION_DELETED"}
WATCHED = FORWARDED | {"TASKS_CREATED", "ANNOTATIONS_CREATED", "PROJECT_UPDATED"}
# Who listens: the subscriber runs only for projects with a backend.
LISTENERS = repository.BACKENDS_OF_PROJECT


def _id(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        found = value.get("id")
        return found if isinstance(found, int) else None
    found = getattr(value, "id", None)
    return found if isinstance(found, int) else None


def imported_task_ranges(objects: dict[str, Any]) -> list[list[int]]:
    ranges = objects.get("task_id_ranges")
    if ranges:
        return [[int(first), int(last)] for first, last in ranges]
    ids = [i for i in (_id(t) for t in objects.get("tasks") or []) if i is not None]
    return enqueue.ranges_of(ids)


def training_due(project: Project, action: str, total: int, added: int) -> bool:
    if action in {"ANNOTATION_CREATED", "ANNOTATION_UPDATED"} and project.start_training_on_annotation_update:
        return True
    every = project.min_annotations_to_start_training
    if every <= 0 or added <= 0:
        return False
    return total // every > (total - added) // every  # the count crossed a multiple of N


def _last_annotation(action: str, objects: dict[str, Any]) -> int | None:
    """The newest annotation the event is about: the training clock reads the count up to it."""
    if action == "ANNOTATION_CREATED":
        return _id(objects.get("annotation"))
    if action == "ANNOTATIONS_CREATED":
        ranges = objects.get("annotation_id_ranges") or []
        return max((int(last) for _, last in ranges), default=None)
    return None


def on_event(session: Session, project_id: int, action: str, objects: dict[str, Any]) -> None:
    """events subscriber: publish() calls it only for WATCHED actions of projects with backends."""
    if action == "PROJECT_UPDATED":
        # Backends learn the label config from /setup: tell them again.
        for backend in repository.list_for_projects(session, [project_id]):
            enqueue.enqueue_setup(session, backend.id)
        return
    if action == "TASKS_CREATED":
        ranges = imported_task_ranges(objects)
        if ranges:
            for backend in repository.list_for_projects(session, [project_id]):
                if backend.auto_update:
                    enqueue.enqueue_predict(session, backend.id, ranges)
        return
    project = session.get(Project, project_id)
    if project is None:
        return
    annotation = objects.get("annotation")
    added = {"ANNOTATION_CREATED": 1, "ANNOTATIONS_CREATED": int(objects.get("annotation_count") or 0)}.get(action, 0)
    if isinstance(annotation, dict) and annotation.get("was_cancelled"):
        added = 0  # a skip moves no clock
    total = repository.counted_annotations(session, project_id, up_to=_last_annotation(action, objects))
    task_id = _id(objects.get("task")) or getattr(annotation, "task_id", None)
    deleted = [i for i in (_id(a) for a in objects.get("annotations") or []) if i is not None]
    train = training_due(project, action, total, added)
    forward = action in FORWARDED
    if forward or train:
        enqueue.enqueue_event(
            session,
            {
                "project_id": project_id,
                "action": action,
                "annotation_id": _id(annotation),
                "task_id": task_id,
                "deleted": deleted,
                "forward": forward,
                "train": train,
            },
        )
