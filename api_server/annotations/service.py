"""Annotation rules: who may write what, result validation, counters, task state, events."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.orm import Session

from api_server import events
from api_server.annotations import repository
from api_server.annotations.schemas import AnnotationCreate, AnnotationPublic, AnnotationUpdate, to_public
from api_server.annotations.validation import validate_result
from api_server.common.errors import BadRequest, Forbidden, NotFound
from api_server.db.models import Annotation, Project, Task, User
from api_server.tasks import counters
from api_server.users.roles import LABELERS, Role
from api_server.workflow import public as workflow
from api_server.workflow.public import is_at_least, project_access, sees_everyones_work, task_access


def _username(session: Session, user_id: int | None) -> str:
    return repository.usernames(session, {user_id}).get(user_id or 0, "")


def _publish(session: Session, action: str, project: Project, task: Task, public: AnnotationPublic) -> None:
    session.flush()
    events.publish(
        session,
        project.id,
        action,
        annotation=public,  # serialized by publish, only when someone listens (most projects: nobody)
        # The row: subscribers serialize it themselves (storage export reads its id).
        task=task,
    )


def _check_author(session: Session, role: str, user: User, completed_by: int | None) -> int:
    """The annotation's author: the caller, or (managers only) another existing user."""
    if completed_by is None or completed_by == user.id:
        return user.id
    if not is_at_least(role, Role.manager):
        raise Forbidden("only managers may submit annotations on behalf of another user (completed_by)")
    if session.get(User, completed_by) is None:
        raise BadRequest(
            f"completed_by: user {completed_by} does not exist",
            validation_errors={"completed_by": ["no such user"]},
        )
    return completed_by


class SubmissionRules(Protocol):
    """What `admit` reads of a project (the ORM row, or the labeling loop's own query row)."""

    # Read-only, so the loop's frozen dataclass fits as well as the ORM row.
    @property
    def show_skip_button(self) -> bool: ...
    @property
    def enable_empty_annotation(self) -> bool: ...
    @property
    def label_config(self) -> str: ...


def admit(project: SubmissionRules, role: str, body: AnnotationCreate) -> None:
    """The checks a new annotation passes before it is written (the author is checked apart)."""
    if (refusal := _role_refusal(project, role, body)) is not None:
        raise refusal
    check_content(project, body)


def check_content(project: SubmissionRules, body: AnnotationCreate) -> None:
    """The checks of `admit` that do not depend on who submits."""
    if not body.was_cancelled and not body.result and not project.enable_empty_annotation:
        raise BadRequest(
            "result: empty annotations are disabled in this project", validation_errors={"result": ["empty"]}
        )
    if body.result:
        validate_result(project.label_config, body.result)


def roles_admitted(project: SubmissionRules, body: AnnotationCreate) -> list[str]:
    """The project roles whose members `admit` lets submit `body` (its content aside)."""
    return [role.value for role in LABELERS if _role_refusal(project, role, body) is None]


def _role_refusal(project: SubmissionRules, role: str, body: AnnotationCreate) -> Forbidden | None:
    if body.was_cancelled and not project.show_skip_button and not is_at_least(role, Role.manager):
        return Forbidden("skipping is disabled in this project (show_skip_button is false)")
    if body.ground_truth and not is_at_least(role, Role.reviewer):
        return Forbidden("marking ground truth needs the reviewer role (or higher)")
    return None


def last_action(body: AnnotationCreate) -> str:
    return "skipped" if body.was_cancelled else (body.last_action or "submitted")


def list_for_task(session: Session, user: User, task_id: int) -> list[AnnotationPublic]:
    task, _, role = task_access(session, user, task_id, Role.viewer)
    rows = repository.for_task(session, task.id, None if sees_everyones_work(role) else user.id)
    names = repository.usernames(session, {r.completed_by_id for r in rows})
    return [to_public(r, names.get(r.completed_by_id or 0, "")) for r in rows]


def create(session: Session, user: User, task_id: int, body: AnnotationCreate) -> AnnotationPublic:
    with workflow.writing(session):
        # The task row is locked first (PostgreSQL): the state decision below reads what it writes over.
        task = workflow.lock_task(session, task_id)
        if task is None:
            raise NotFound(f"task {task_id} does not exist")
        project, role = project_access(session, user, task.project_id, Role.annotator)
        admit(project, role, body)
        author = _check_author(session, role, user, body.completed_by)
        row = Annotation(
            task_id=task.id,
            project_id=project.id,
            completed_by_id=author,
            result=body.result,
            was_cancelled=body.was_cancelled,
            ground_truth=body.ground_truth,
            lead_time=body.lead_time,
            parent_prediction_id=body.parent_prediction,
            parent_annotation_id=body.parent_annotation,
            import_id=body.import_id,
            last_action=last_action(body),
            updated_by_id=user.id,
        )
        row.draft_created_at = repository.take_drafts(session, task.id, author, None) or body.draft_created_at
        session.add(row)
        session.flush()
        workflow.release_lock(session, task.id, author)
        counters.refresh_row(session, task)
        event = "skipped" if body.was_cancelled else "submitted"
        workflow.settle(session, task, project, user.id, event, f"annotation {row.id} {event}")
        public = to_public(row, user.username if author == user.id else _username(session, author))
        _publish(session, "ANNOTATION_CREATED", project, task, public)
        session.commit()
    counter = workflow.ANNOTATIONS_SKIPPED if body.was_cancelled else workflow.ANNOTATIONS_SUBMITTED
    counter.labels(str(project.id)).inc()
    return public


def _annotation_access(
    session: Session, user: User, annotation_id: int, minimum: Role
) -> tuple[Annotation, Project, str]:
    row = session.get(Annotation, annotation_id)
    if row is None:
        raise NotFound(f"annotation {annotation_id} does not exist")
    project, role = project_access(session, user, row.project_id, minimum)
    if not sees_everyones_work(role) and row.completed_by_id != user.id:
        raise Forbidden("annotators can only see and change their own annotations")
    return row, project, role


def get(session: Session, user: User, annotation_id: int) -> AnnotationPublic:
    row, _, _ = _annotation_access(session, user, annotation_id, Role.viewer)
    return to_public(row, _username(session, row.completed_by_id))


def update(session: Session, user: User, annotation_id: int, body: AnnotationUpdate) -> AnnotationPublic:
    row, project, role = _annotation_access(session, user, annotation_id, Role.annotator)
    own = row.completed_by_id == user.id
    if not own and not is_at_least(role, Role.reviewer):
        raise Forbidden("changing another user's annotation needs the reviewer role (or higher)")
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    if changes.get("result") is not None:
        validate_result(project.label_config, changes["result"])
    if changes.get("ground_truth") and not is_at_least(role, Role.reviewer):
        raise Forbidden("marking ground truth needs the reviewer role (or higher)")
    if changes.get("task") not in (None, row.task_id) or changes.get("project") not in (None, row.project_id):
        raise BadRequest("an annotation cannot move to another task or project")
    author = row.completed_by_id
    if changes.get("completed_by") not in (None, row.completed_by_id):
        author = _check_author(session, role, user, changes["completed_by"])
    with workflow.writing(session):
        task = workflow.lock_task(session, row.task_id)
        row = session.get(Annotation, annotation_id, populate_existing=True)  # type: ignore[assignment]  # None checked below
        if task is None or row is None:
            raise NotFound(f"annotation {annotation_id} does not exist")
        for key in ("result", "was_cancelled", "ground_truth", "lead_time"):
            if changes.get(key) is not None:
                setattr(row, key, changes[key])
        row.completed_by_id = author
        row.updated_by_id = user.id
        row.last_action = changes.get("last_action") or "updated"
        changed = changes.get("result") is not None or changes.get("was_cancelled") is not None
        if own and (row.review_status == "rejected" or (row.review_status == "accepted" and changed)):
            # The author reworked reviewed work: it counts again and waits for a new review.
            row.review_status = None
        repository.take_drafts(session, task.id, user.id, row.id)
        session.flush()
        counters.refresh_row(session, task)
        workflow.settle(session, task, project, user.id, "updated", f"annotation {row.id} updated")
        public = to_public(row, _username(session, row.completed_by_id))
        _publish(session, "ANNOTATION_UPDATED", project, task, public)
        session.commit()
    return public


def delete(session: Session, user: User, annotation_id: int) -> None:
    row, project, role = _annotation_access(session, user, annotation_id, Role.annotator)
    if row.completed_by_id != user.id and not is_at_least(role, Role.manager):
        raise Forbidden("deleting another user's annotation needs the manager role (or higher)")
    with workflow.writing(session):
        task = workflow.lock_task(session, row.task_id)
        row = session.get(Annotation, annotation_id, populate_existing=True)  # type: ignore[assignment]  # None checked below
        if task is None or row is None:
            raise NotFound(f"annotation {annotation_id} does not exist")
        session.delete(row)
        session.flush()
        counters.refresh_row(session, task)
        workflow.settle(session, task, project, user.id, "deleted", f"annotation {annotation_id} deleted")
        events.publish(
            session,
            project.id,
            "ANNOTATIONS_DELETED",
            annotations=[{"id": annotation_id}],
            task=task,
        )
        session.commit()
