"""Queries of the ML domain: backends, the tasks they predict, the predictions they produce."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select
from sqlalchemy.orm import Session

from api_server.db.models import Annotation, MLBackend, Prediction, Project, Task
from api_server.tasks import counters


def get(session: Session, backend_id: int) -> MLBackend | None:
    return session.get(MLBackend, backend_id)


def list_for_projects(session: Session, project_ids: Sequence[int] | None) -> list[MLBackend]:
    stmt = select(MLBackend).order_by(MLBackend.id)
    if project_ids is not None:
        stmt = stmt.where(MLBackend.project_id.in_(project_ids))
    return list(session.scalars(stmt))


def find_by_title(session: Session, project_id: int, title: str) -> MLBackend | None:
    stmt = select(MLBackend).where(MLBackend.project_id == project_id, MLBackend.title == title)
    return session.scalars(stmt.order_by(MLBackend.id).limit(1)).first()


# The ML backends of a project (bind `project_id`).
BACKENDS_OF_PROJECT = select(MLBackend.id).where(MLBackend.project_id == bindparam("project_id"))


def counted_annotations(session: Session, project_id: int, up_to: int | None = None) -> int:
    """Submitted (not skipped) annotations of a project (up to an annotation id): the clock of training triggers."""
    stmt = select(func.count()).where(Annotation.project_id == project_id, Annotation.was_cancelled.is_(False))
    if up_to is not None:
        stmt = stmt.where(Annotation.id <= up_to)
    return int(session.scalar(stmt) or 0)


def task_json(task: Task) -> dict[str, Any]:
    """A task as ML backends receive it (Label Studio's task JSON, without annotations)."""
    return {
        "id": task.id,
        "data": task.data,
        "meta": task.meta or {},
        "project": task.project_id,
        "inner_id": task.inner_id,
        "is_labeled": task.is_labeled,
        "total_annotations": task.total_annotations,
        "annotations": [],
        "predictions": [],
    }


def annotation_json(annotation: Annotation) -> dict[str, Any]:
    return {
        "id": annotation.id,
        "task": annotation.task_id,
        "project": annotation.project_id,
        "result": annotation.result,
        "was_cancelled": annotation.was_cancelled,
        "ground_truth": annotation.ground_truth,
        "completed_by": annotation.completed_by_id,
        "lead_time": annotation.lead_time,
        "created_at": annotation.created_at.isoformat() if annotation.created_at else None,
        "updated_at": annotation.updated_at.isoformat() if annotation.updated_at else None,
    }


def project_json(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "title": project.title,
        "label_config": project.label_config,
        "model_version": project.model_version,
        "min_annotations_to_start_training": project.min_annotations_to_start_training,
    }


def tasks_by_ids(session: Session, project_id: int, ids: Iterable[int], chunk: int = 500) -> Iterator[list[Task]]:
    """Tasks of the project among `ids`, in id order, `chunk` at a time (memory stays flat)."""
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), chunk):
        part = wanted[start : start + chunk]
        stmt = select(Task).where(Task.project_id == project_id, Task.id.in_(part)).order_by(Task.id)
        rows = list(session.scalars(stmt))
        if rows:
            yield rows


def tasks_needing_prediction(
    session: Session, project_id: int, *, only_unlabeled: bool, chunk: int = 500
) -> Iterator[list[Task]]:
    """Every task of the project (or every unlabeled one), by keyset pages of `chunk`."""
    last = 0
    while True:
        stmt = select(Task).where(Task.project_id == project_id, Task.id > last)
        if only_unlabeled:
            stmt = stmt.where(~Task.is_labeled)
        rows = list(session.scalars(stmt.order_by(Task.id).limit(chunk)))
        if not rows:
            return
        yield rows
        last = rows[-1].id


def first_task(session: Session, project_id: int) -> Task | None:
    return session.scalars(select(Task).where(Task.project_id == project_id).order_by(Task.id).limit(1)).first()


def replace_predictions(
    session: Session,
    *,
    project_id: int,
    backend_id: int,
    items: Sequence[tuple[int, list[dict[str, Any]], float | None, str]],
    requested_at: datetime,
) -> int:
    """Store (task_id, result, score, model_version) predictions of one backend.

    A task keeps one prediction per backend: the new one replaces whatever that backend
    predicted before (any older model version) and any prediction carrying the same model
    version, so re-predicting never piles up rows. Runs for the same tasks are serialised by
    locking the task rows; a run never overwrites a prediction requested after its own
    (`requested_at`, stored as created_at), so a slow run of an older model cannot undo a
    newer one. Task counters (total_predictions, the newest score used by uncertainty
    sampling) are refreshed in the same transaction. Returns how many predictions were stored.
    """
    if not items:
        return 0
    task_ids = sorted({task_id for task_id, *_ in items})
    # Row locks on PostgreSQL (in id order: no deadlocks); SQLite serialises writers anyway.
    session.execute(select(Task.id).where(Task.id.in_(task_ids)).order_by(Task.id).with_for_update())
    newer = set(
        session.scalars(
            select(Prediction.task_id).where(
                Prediction.task_id.in_(task_ids),
                Prediction.ml_backend_id == backend_id,
                Prediction.created_at > requested_at,
            )
        )
    )
    items = [item for item in items if item[0] not in newer]
    if not items:
        return 0
    task_ids = [task_id for task_id, *_ in items]
    versions = {version for *_, version in items}
    session.execute(
        delete(Prediction)
        .where(
            Prediction.task_id.in_(task_ids),
            or_(Prediction.ml_backend_id == backend_id, Prediction.model_version.in_(versions)),
        )
        .execution_options(synchronize_session=False)
    )
    # created_at is when the backend was asked, so "stored by a later run" compares request times.
    session.add_all(
        Prediction(
            task_id=task_id,
            project_id=project_id,
            result=result,
            score=score,
            model_version=version,
            ml_backend_id=backend_id,
            created_at=requested_at,
        )
        for task_id, result, score, version in items
    )
    session.flush()
    counters.refresh(session, task_ids)
    return len(items)


def annotations_with_tasks(session: Session, project_id: int, limit: int = 10_000) -> list[dict[str, Any]]:
    """The newest submitted annotations, each with its task (legacy POST /train bodies)."""
    stmt = (
        select(Annotation, Task)
        .join(Task, Task.id == Annotation.task_id)
        .where(Annotation.project_id == project_id, Annotation.was_cancelled.is_(False))
        .order_by(Annotation.id.desc())
        .limit(limit)
    )
    return [{**annotation_json(a), "task": task_json(t)} for a, t in session.execute(stmt)]


def event_payload(
    session: Session,
    project_id: int,
    action: str,
    annotation_id: int | None,
    task_id: int | None,
    deleted: Sequence[int],
) -> dict[str, Any] | None:
    """Label Studio's webhook payload for an annotation event; None when there is nothing to send."""
    project = session.get(Project, project_id)
    if project is None:
        return None
    payload: dict[str, Any] = {"project": project_json(project)}
    if action in {"ANNOTATIONS_DELETED", "ANNOTATION_DELETED"}:
        ids = list(deleted) or ([annotation_id] if annotation_id is not None else [])
        payload["annotations"] = [{"id": i} for i in ids]
        return payload if ids else None
    annotation = session.get(Annotation, annotation_id) if annotation_id is not None else None
    if annotation is None:
        return None  # deleted again before the event ran: nothing to learn from
    task = session.get(Task, task_id or annotation.task_id)
    payload["annotation"] = annotation_json(annotation)
    payload["task"] = task_json(task) if task is not None else {"id": annotation.task_id}
    return payload
