"""The two calls annotators make all day, as their endpoints run them.

The PostgreSQL path (`pg_loop`) answers when it can; otherwise the services do, in one trip to
the thread pool with a session of their own (an async endpoint holds no session it may not need).
"""

from __future__ import annotations

from fastapi import Request

from api_server.annotations import service as annotation_service
from api_server.annotations.schemas import AnnotationCreate, AnnotationPublic
from api_server.common.routing import in_new_session
from api_server.db.models import User
from api_server.workflow import pg_loop, service
from api_server.workflow.schemas import TaskPayload


async def next_task(request: Request, user: User, project_id: int, view_id: int | None = None) -> TaskPayload:
    # A view's filters are arbitrary SQL, which the database function does not take: the services answer.
    fast = pg_loop.of(request) if view_id is None else None
    if fast is not None and (payload := await fast.next_task(user, project_id)) is not None:
        return payload
    state = request.app.state
    return await in_new_session(
        state.session_factory,
        service.next_task,
        user=user,
        project_id=project_id,
        settings=state.settings,
        view_id=view_id,
    )


async def submit(request: Request, user: User, task_id: int, body: AnnotationCreate) -> AnnotationPublic:
    """A new annotation, or a skip (`was_cancelled`)."""
    fast = pg_loop.of(request)
    if fast is not None and (created := await fast.submit(user, task_id, body)) is not None:
        return created
    factory = request.app.state.session_factory
    return await in_new_session(factory, annotation_service.create, user=user, task_id=task_id, body=body)
