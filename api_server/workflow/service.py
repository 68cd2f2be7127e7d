"""Workflow rules: where a task goes after each event, the next task of an annotator, reviews."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from api_server import events
from api_server.annotations.schemas import to_public as annotation_public
from api_server.common.errors import BadRequest, Conflict, Forbidden, NotFound
from api_server.db.base import utcnow
from api_server.db.models import Annotation, Draft, Prediction, Project, Review, Task, User
from api_server.drafts.schemas import to_public as draft_public
from api_server.predictions.schemas import to_public as prediction_public
from api_server.settings import Settings
from api_server.storages.presign import resolve_task_data
from api_server.tasks import counters
from api_server.users.roles import Role
from api_server.views import service as views
from api_server.workflow import metrics, repository, txn
from api_server.workflow.access import project_access, task_access
from api_server.workflow.schemas import (
    ReviewPublic,
    ReviewRequest,
    TaskPayload,
    TransitionPublic,
    review_public,
    task_payload,
    transition_public,
)
from api_server.workflow.state_machine import IllegalTransition, TaskState, check

S = TaskState
# Candidates one /next may find taken meanwhile before it gives up (each try sees newer commits).
_ATTEMPTS = 50
# A task moving into one of these from any other state was completed (TASK_COMPLETED).
_FINISHED = frozenset({S.completed, S.accepted})


def move(session: Session, task: Task, target: str, user_id: int | None, comment: str = "") -> None:
    """Move the task to `target` through the state machine, recording the transition (409 if illegal)."""
    current = task.state
    if current == target:
        return
    try:
        check(current, target)
    except IllegalTransition as exc:
        raise Conflict(
            f"task {task.id}: {exc}",
            extra={"current_state": exc.current, "allowed": exc.allowed},
        ) from None
    # The row object follows what was written, without a flush (or a query) to get it there.
    set_committed_value(task, "updated_at", repository.set_state(session, task.id, current, target, user_id, comment))
    set_committed_value(task, "state", target)
    if target in _FINISHED and current not in _FINISHED:
        events.publish(session, task.project_id, "TASK_COMPLETED", task=task)


def settle(session: Session, task: Task, project: Project, user_id: int | None, event: str, comment: str = "") -> None:
    """Put the (row-locked, counters refreshed) task in the state its annotations call for after `event`.

    events: next | draft | submitted | skipped | updated | deleted | accepted | rejected
    """
    counted, locks, all_accepted = repository.slot_counts(session, task.id, project.skip_queue, utcnow())
    busy = counted > 0 or locks > 0
    if counted >= task.overlap:
        target = S.accepted if all_accepted else S.completed
    elif event == "rejected":
        target = S.rejected
    elif event == "accepted":
        target = TaskState(task.state)
    elif event == "skipped":
        if task.state == S.rejected and not busy:
            target = S.rejected  # still waiting for someone to redo it
        elif busy or task.state in {S.completed, S.accepted}:
            target = S.in_progress
        else:
            target = S.skipped
    elif event in {"updated", "deleted"}:
        target = S.in_progress if busy else S.new
    else:
        target = S.in_progress
    move(session, task, target, user_id, comment or event)


# --- next task ------------------------------------------------------------------------------


def _payload(
    session: Session, task: Task, user: User, *, with_own: bool, fresh: bool, model_version: str = ""
) -> TaskPayload:
    # The counters and the state spare queries: no predictions to load when the task has none,
    # no drafts of the caller on a task that was new (saving a draft moves it to in_progress).
    # Pre-annotations are the predictions of the project's model version when it names one.
    chosen = [Prediction.model_version == model_version] if model_version else []
    predictions: Iterable[Prediction] = (
        session.scalars(select(Prediction).where(Prediction.task_id == task.id, *chosen).order_by(Prediction.id))
        if task.total_predictions
        else []
    )
    drafts: Iterable[Draft] = (
        []
        if fresh
        else session.scalars(select(Draft).where(Draft.task_id == task.id, Draft.user_id == user.id).order_by(Draft.id))
    )
    # Only REQUEUE_FOR_ME hands out tasks the caller touched before (their own skips).
    own: Iterable[Annotation] = (
        session.scalars(select(Annotation).where(Annotation.task_id == task.id, Annotation.completed_by_id == user.id))
        if with_own
        else []
    )
    return build_payload(task, user, own=own, predictions=predictions, drafts=drafts)


def build_payload(
    task: Task, user: User, *, own: Iterable[Annotation], predictions: Iterable[Prediction], drafts: Iterable[Draft]
) -> TaskPayload:
    """What /next answers: the task with the caller's own annotations and drafts, and its predictions."""
    payload = task_payload(
        task,
        annotations=[annotation_public(a, user.username) for a in own],
        predictions=[prediction_public(p) for p in predictions],
        drafts=[draft_public(d, user.username) for d in drafts],
    )
    # Media in connected buckets (s3://, gs://, azure-blob://) is served through the presign endpoint.
    payload.data = resolve_task_data(task.data, task.id)
    return payload


def _claim(
    session: Session,
    project: Project,
    user_id: int,
    ttl: timedelta,
    allow_own_skips: bool,
    where: ColumnElement[bool] | None = None,
) -> Task | None:
    """Lock an available task for the user; on PostgreSQL re-check it in a fresh statement first.

    The candidate query skips rows other transactions hold, but judges the rest by the snapshot
    it started with: a lock committed between that snapshot and the row lock is only visible to
    a later statement, the lock insert (`repository.claim`). A candidate that fails the re-check
    is skipped by the next query's fresh snapshot, so the loop moves on.
    """
    start = None
    if project.sampling == repository.UNIFORM:
        low, high = repository.id_range(session, project.id)
        if low is None or high is None:
            return None
        start = random.randint(low, high)
    for _ in range(_ATTEMPTS):
        now = utcnow()
        task = repository.candidate(
            session, project, user_id, now, allow_own_skips=allow_own_skips, start=start, where=where
        )
        if task is None:
            return None
        if repository.claim(session, project, task.id, user_id, now, now + ttl, allow_own_skips=allow_own_skips):
            return task
    return None


def next_task(
    session: Session, user: User, project_id: int, settings: Settings, view_id: int | None = None
) -> TaskPayload:
    started = time.perf_counter()
    project, _ = project_access(session, user, project_id, Role.annotator)
    # Confined to a view: its filters and selected items narrow the candidates (sampling order kept).
    where = (
        views.prepared(session, user, view_id=view_id, query=None, project_id=project.id).where
        if view_id is not None
        else None
    )
    ttl = timedelta(seconds=project.task_lock_ttl or settings.task_lock_ttl_seconds)
    with txn.writing(session):
        now = utcnow()
        held = repository.held_lock(session, project.id, user.id, now)
        task: Task | None
        if held is not None:
            # The caller's own task, fetched again (a reload, a second tab): same task, lock extended.
            lock_id, task = held
            repository.extend_lock(session, lock_id, now + ttl)
            fresh = False
        else:
            task = _claim(session, project, user.id, ttl, allow_own_skips=False, where=where)
            if task is None and project.skip_queue == repository.REQUEUE_FOR_ME:
                task = _claim(session, project, user.id, ttl, allow_own_skips=True, where=where)
            if task is None:
                session.commit()
                metrics.NEXT_TASK_DURATION.observe(time.perf_counter() - started)
                raise NotFound("no more tasks")
            fresh = task.state == S.new
            if task.state != S.in_progress:
                move(session, task, S.in_progress, user.id, "handed out by /next")
        session.commit()
    own = project.skip_queue == repository.REQUEUE_FOR_ME
    payload = _payload(session, task, user, with_own=own, fresh=fresh, model_version=project.model_version)
    metrics.NEXT_TASK_DURATION.observe(time.perf_counter() - started)
    return payload


# --- reviews and history --------------------------------------------------------------------


def review(session: Session, user: User, annotation_id: int, body: ReviewRequest) -> ReviewPublic:
    annotation = session.get(Annotation, annotation_id)
    if annotation is None:
        raise NotFound(f"annotation {annotation_id} does not exist")
    project, role = project_access(session, user, annotation.project_id, Role.reviewer)
    if annotation.was_cancelled:
        raise BadRequest(f"annotation {annotation_id} is a skip: there is nothing to review")
    if annotation.completed_by_id == user.id and role != Role.admin.value:
        raise Forbidden("reviewers cannot review their own annotations")
    verdict = S.accepted if body.accepted else S.rejected
    with txn.writing(session):
        task = repository.lock_task(session, annotation.task_id)
        annotation = session.get(Annotation, annotation_id, populate_existing=True)
        if task is None or annotation is None:
            raise NotFound(f"annotation {annotation_id} does not exist")
        if task.state not in {S.completed, S.accepted, S.rejected}:
            # A review decides a completed task; name the move that was attempted.
            move(session, task, verdict, user.id, body.comment)
        annotation.review_status = verdict.value
        annotation.last_action = verdict.value
        annotation.updated_by_id = user.id
        row = Review(annotation_id=annotation.id, reviewer_id=user.id, accepted=body.accepted, comment=body.comment)
        session.add(row)
        session.flush()
        counters.refresh_row(session, task)
        comment = f"annotation {annotation.id} {verdict.value}" + (f": {body.comment}" if body.comment else "")
        settle(session, task, project, user.id, verdict.value, comment)
        result = review_public(row, task)
        events.publish(
            session,
            project.id,
            "REVIEW_CREATED",
            review=result.model_dump(mode="json"),
            annotation=annotation_public(annotation).model_dump(mode="json"),
            task=task,
        )
        session.commit()
    metrics.REVIEWS.labels(str(project.id), verdict.value).inc()
    return result


def history(session: Session, user: User, task_id: int) -> list[TransitionPublic]:
    task, _, _ = task_access(session, user, task_id, Role.viewer)
    return [transition_public(t) for t in repository.history(session, task.id)]
