"""Draft endpoints (Label Studio paths)."""

from __future__ import annotations

from fastapi import Response

from api_server.common.routing import DualSlashRouter
from api_server.deps import CurrentUser, SessionDep
from api_server.drafts import service
from api_server.drafts.schemas import DraftPublic, DraftWrite

router = DualSlashRouter(prefix="/api", tags=["drafts"])


@router.get("/tasks/{task_id}/drafts/", response_model=list[DraftPublic])
def list_drafts(task_id: int, session: SessionDep, user: CurrentUser) -> list[DraftPublic]:
    """Drafts of a task (annotators see only their own)."""
    return service.list_for_task(session, user, task_id)


@router.post("/tasks/{task_id}/drafts/", response_model=DraftPublic, status_code=201)
def save_draft(task_id: int, body: DraftWrite, session: SessionDep, user: CurrentUser) -> DraftPublic:
    """Save the caller's draft of the task (replaces their previous one; removed when they submit)."""
    return service.save(session, user, task_id, body)


@router.get("/tasks/{task_id}/annotations/{annotation_id}/drafts/", response_model=list[DraftPublic])
def list_annotation_drafts(
    task_id: int, annotation_id: int, session: SessionDep, user: CurrentUser
) -> list[DraftPublic]:
    return service.list_for_task(session, user, task_id, annotation_id)


@router.post("/tasks/{task_id}/annotations/{annotation_id}/drafts/", response_model=DraftPublic, status_code=201)
def save_annotation_draft(
    task_id: int, annotation_id: int, body: DraftWrite, session: SessionDep, user: CurrentUser
) -> DraftPublic:
    """Save the caller's draft of changes to an existing annotation."""
    return service.save(session, user, task_id, body, annotation_id)


@router.get("/drafts/{draft_id}/", response_model=DraftPublic)
def get_draft(draft_id: int, session: SessionDep, user: CurrentUser) -> DraftPublic:
    return service.get(session, user, draft_id)


@router.patch("/drafts/{draft_id}/", response_model=DraftPublic)
def update_draft(draft_id: int, body: DraftWrite, session: SessionDep, user: CurrentUser) -> DraftPublic:
    return service.update(session, user, draft_id, body)


@router.delete("/drafts/{draft_id}/", status_code=204)
def delete_draft(draft_id: int, session: SessionDep, user: CurrentUser) -> Response:
    service.delete(session, user, draft_id)
    return Response(status_code=204)
