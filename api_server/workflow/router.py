"""Workflow endpoints: Label Studio's label stream (/next) and submitting an annotation (the loop's two
calls), skip, and kubelabel's history and review."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from api_server.annotations.schemas import AnnotationCreate, AnnotationPublic
from api_server.common.routing import DualSlashRouter
from api_server.deps import CurrentUser, SessionDep
from api_server.workflow import loop, service
from api_server.workflow.schemas import ReviewPublic, ReviewRequest, SkipRequest, TaskPayload, TransitionPublic

router = DualSlashRouter(prefix="/api", tags=["workflow"])


@router.get("/projects/{project_id}/next/", response_model=TaskPayload)
async def next_task(
    project_id: int,
    request: Request,
    user: CurrentUser,
    view: Annotated[int | None, Query(description="only tasks of this data-manager view (its filters)")] = None,
) -> TaskPayload:
    """The caller's next task (locked for them until they submit, skip, or the lock expires).

    Follows the project's sampling and overlap; never a task the caller already annotated or
    skipped. 404 {"detail": "no more tasks"} when there is nothing left for the caller.
    With `view`, only tasks that view's filters and selected items admit (Label Studio's
    "label tasks in this view").
    """
    return await loop.next_task(request, user, project_id, view)


@router.post("/tasks/{task_id}/annotations/", response_model=AnnotationPublic, status_code=201, tags=["annotations"])
async def create_annotation(
    task_id: int, body: AnnotationCreate, request: Request, user: CurrentUser
) -> AnnotationPublic:
    """Submit an annotation; `was_cancelled: true` skips the task. The result is checked against the config."""
    return await loop.submit(request, user, task_id, body)


@router.post("/tasks/{task_id}/skip/", response_model=AnnotationPublic, status_code=201)
async def skip_task(
    task_id: int, request: Request, user: CurrentUser, body: SkipRequest | None = None
) -> AnnotationPublic:
    """Skip a task (kubelabel shortcut for posting an annotation with `was_cancelled: true`)."""
    skip = AnnotationCreate(was_cancelled=True, lead_time=body.lead_time if body else None)
    return await loop.submit(request, user, task_id, skip)


@router.get("/tasks/{task_id}/history/", response_model=list[TransitionPublic])
def task_history(task_id: int, session: SessionDep, user: CurrentUser) -> list[TransitionPublic]:
    """The task's state transitions, oldest first: who moved it, when, from where to where, why."""
    return service.history(session, user, task_id)


@router.post("/annotations/{annotation_id}/review/", response_model=ReviewPublic, status_code=201)
def review_annotation(annotation_id: int, body: ReviewRequest, session: SessionDep, user: CurrentUser) -> ReviewPublic:
    """Accept or reject an annotation (reviewers). A rejected annotation stops counting: the task returns to work."""
    return service.review(session, user, annotation_id, body)
