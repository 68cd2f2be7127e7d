"""Workflow endpoints: Label Studio's label stream (/next), skip, and kubelabel's history and review."""

from __future__ import annotations

from fastapi import Request

from api_server.annotations import service as annotations
from api_server.annotations.schemas import AnnotationCreate, AnnotationPublic
from api_server.common.routing import DualSlashRouter, in_new_session
from api_server.db.models import User
from api_server.deps import CurrentUser, SessionDep
from api_server.workflow import pg_loop, service
from api_server.workflow.schemas import ReviewPublic, ReviewRequest, SkipRequest, TaskPayload, TransitionPublic

router = DualSlashRouter(prefix="/api", tags=["workflow"])


@router.get("/projects/{project_id}/next/", response_model=TaskPayload)
async def next_task(project_id: int, request: Request, user: CurrentUser) -> TaskPayload:
    """The caller's next task (locked for them until they submit, skip, or the lock expires).

    Follows the project's sampling and overlap; never a task the caller already annotated or
    skipped. 404 {"detail": "no more tasks"} when there is nothing left for the caller.
    """
    loop = pg_loop.of(request)
    if loop is not None and (payload := await loop.next_task(user, project_id)) is not None:
        return payload
    state = request.app.state
    return await in_new_session(
        state.session_factory, service.next_task, user=user, project_id=project_id, settings=state.settings
    )


@router.post("/tasks/{task_id}/skip/", response_model=AnnotationPublic, status_code=201)
async def skip_task(
    task_id: int, request: Request, user: CurrentUser, body: SkipRequest | None = None
) -> AnnotationPublic:
    """Skip a task (kubelabel shortcut for posting an annotation with `was_cancelled: true`)."""
    skip = AnnotationCreate(was_cancelled=True, lead_time=body.lead_time if body else None)
    return await create_annotation(request, user, task_id, skip)


async def create_annotation(request: Request, user: User, task_id: int, body: AnnotationCreate) -> AnnotationPublic:
    """A submission or a skip: through the PostgreSQL loop when it takes it, else the service."""
    loop = pg_loop.of(request)
    if loop is not None and (created := await loop.submit(user, task_id, body)) is not None:
        return created
    factory = request.app.state.session_factory
    return await in_new_session(factory, annotations.create, user=user, task_id=task_id, body=body)


@router.get("/tasks/{task_id}/history/", response_model=list[TransitionPublic])
def task_history(task_id: int, session: SessionDep, user: CurrentUser) -> list[TransitionPublic]:
    """The task's state transitions, oldest first: who moved it, when, from where to where, why."""
    return service.history(session, user, task_id)


@router.post("/annotations/{annotation_id}/review/", response_model=ReviewPublic, status_code=201)
def review_annotation(annotation_id: int, body: ReviewRequest, session: SessionDep, user: CurrentUser) -> ReviewPublic:
    """Accept or reject an annotation (reviewers). A rejected annotation stops counting: the task returns to work."""
    return service.review(session, user, annotation_id, body)
