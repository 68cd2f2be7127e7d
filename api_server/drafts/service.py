"""Draft rules: one draft per user per task (or per annotation), private to its author."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_server.annotations.validation import validate_result
from api_server.common.errors import BadRequest, Forbidden, NotFound
from api_server.db.models import Annotation, Draft, User
from api_server.drafts.schemas import DraftPublic, DraftWrite, to_public
from api_server.users.roles import Role
from api_server.workflow import public as workflow
from api_server.workflow.public import is_at_least, sees_everyones_work, task_access


def list_for_task(session: Session, user: User, task_id: int, annotation_id: int | None = None) -> list[DraftPublic]:
    task, _, role = task_access(session, user, task_id, Role.viewer)
    stmt = select(Draft, User.username).outerjoin(User, User.id == Draft.user_id).where(Draft.task_id == task.id)
    if annotation_id is not None:
        stmt = stmt.where(Draft.annotation_id == annotation_id)
    if not sees_everyones_work(role):
        stmt = stmt.where(Draft.user_id == user.id)
    return [to_public(d, name or "") for d, name in session.execute(stmt.order_by(Draft.id))]


def save(session: Session, user: User, task_id: int, body: DraftWrite, annotation_id: int | None = None) -> DraftPublic:
    """Create the caller's draft of the task (or replace it: one draft per user and task/annotation)."""
    task, project, _ = task_access(session, user, task_id, Role.annotator)
    if annotation_id is not None:
        annotation = session.get(Annotation, annotation_id)
        if annotation is None or annotation.task_id != task.id:
            raise NotFound(f"annotation {annotation_id} does not exist in task {task_id}")
    if body.result:
        validate_result(project.label_config, body.result)
    with workflow.writing(session):
        task = workflow.lock_task(session, task_id)  # type: ignore[assignment]  # None checked below
        if task is None:
            raise NotFound(f"task {task_id} does not exist")
        where = [Draft.task_id == task.id, Draft.user_id == user.id]
        where.append(Draft.annotation_id.is_(None) if annotation_id is None else Draft.annotation_id == annotation_id)
        draft = session.scalars(select(Draft).where(*where).limit(1)).first()
        if draft is None:
            draft = Draft(task_id=task.id, user_id=user.id, annotation_id=annotation_id)
            session.add(draft)
        draft.result = body.result if body.result is not None else (draft.result or [])
        if body.lead_time is not None:
            draft.lead_time = body.lead_time
        if body.was_postponed is not None:
            draft.was_postponed = body.was_postponed
        session.flush()
        if task.state in {"new", "skipped", "rejected"}:
            workflow.settle(session, task, project, user.id, "draft", f"draft {draft.id} saved")
        public = to_public(draft, user.username)
        session.commit()
    return public


def _own_draft(session: Session, user: User, draft_id: int, minimum: Role) -> tuple[Draft, str]:
    draft = session.get(Draft, draft_id)
    if draft is None:
        raise NotFound(f"draft {draft_id} does not exist")
    task, _, role = task_access(session, user, draft.task_id, minimum)
    if draft.user_id != user.id and not is_at_least(role, Role.manager):
        raise Forbidden("drafts are private to their author (managers may read and delete them)")
    return draft, role


def get(session: Session, user: User, draft_id: int) -> DraftPublic:
    draft, _ = _own_draft(session, user, draft_id, Role.annotator)
    return to_public(draft, user.username if draft.user_id == user.id else "")


def update(session: Session, user: User, draft_id: int, body: DraftWrite) -> DraftPublic:
    draft, _ = _own_draft(session, user, draft_id, Role.annotator)
    if draft.user_id != user.id:
        raise Forbidden("only the author may change a draft")
    if body.task not in (None, draft.task_id):
        raise BadRequest("a draft cannot move to another task")
    return save(session, user, draft.task_id, body, draft.annotation_id)


def delete(session: Session, user: User, draft_id: int) -> None:
    draft, _ = _own_draft(session, user, draft_id, Role.annotator)
    with workflow.writing(session):
        session.execute(Draft.__table__.delete().where(Draft.id == draft.id))
        session.commit()
