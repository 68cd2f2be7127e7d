"""Annotation endpoints (Label Studio paths); submitting one is the labeling loop's (workflow/router.py)."""

from __future__ import annotations

from fastapi import Response

from api_server.annotations import service
from api_server.annotations.schemas import AnnotationPublic, AnnotationUpdate
from api_server.common.routing import DualSlashRouter
from api_server.deps import CurrentUser, SessionDep

router = DualSlashRouter(prefix="/api", tags=["annotations"])


@router.get("/tasks/{task_id}/annotations/", response_model=list[AnnotationPublic])
def list_annotations(task_id: int, session: SessionDep, user: CurrentUser) -> list[AnnotationPublic]:
    """Annotations of a task (annotators see only their own)."""
    return service.list_for_task(session, user, task_id)


@router.get("/annotations/{annotation_id}/", response_model=AnnotationPublic)
def get_annotation(annotation_id: int, session: SessionDep, user: CurrentUser) -> AnnotationPublic:
    return service.get(session, user, annotation_id)


@router.patch("/annotations/{annotation_id}/", response_model=AnnotationPublic)
def update_annotation(
    annotation_id: int, body: AnnotationUpdate, session: SessionDep, user: CurrentUser
) -> AnnotationPublic:
    return service.update(session, user, annotation_id, body)


@router.delete("/annotations/{annotation_id}/", status_code=204)
def delete_annotation(annotation_id: int, session: SessionDep, user: CurrentUser) -> Response:
    service.delete(session, user, annotation_id)
    return Response(status_code=204)
