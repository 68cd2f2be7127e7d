"""Prediction endpoints (Label Studio paths)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from api_server.common.routing import DualSlashRouter
from api_server.deps import CurrentUser, SessionDep
from api_server.predictions import service
from api_server.predictions.schemas import PredictionCreate, PredictionPublic, PredictionUpdate

router = DualSlashRouter(prefix="/api/predictions", tags=["predictions"])


@router.get("/", response_model=list[PredictionPublic])
def list_predictions(
    session: SessionDep,
    user: CurrentUser,
    task: Annotated[int | None, Query(description="only this task's predictions")] = None,
    project: Annotated[int | None, Query(description="only this project's predictions")] = None,
    task__project: Annotated[int | None, Query(include_in_schema=False)] = None,
) -> list[PredictionPublic]:
    return service.list_predictions(session, user, task_id=task, project_id=project or task__project)


@router.post("/", response_model=PredictionPublic, status_code=201)
def create_prediction(body: PredictionCreate, session: SessionDep, user: CurrentUser) -> PredictionPublic:
    """Add a model prediction to a task (managers; ML backends use the admin token).

    Its score drives uncertainty sampling.
    """
    return service.create(session, user, body)


@router.get("/{prediction_id}/", response_model=PredictionPublic)
def get_prediction(prediction_id: int, session: SessionDep, user: CurrentUser) -> PredictionPublic:
    return service.get(session, user, prediction_id)


@router.patch("/{prediction_id}/", response_model=PredictionPublic)
def update_prediction(
    prediction_id: int, body: PredictionUpdate, session: SessionDep, user: CurrentUser
) -> PredictionPublic:
    return service.update(session, user, prediction_id, body)


@router.put("/{prediction_id}/", response_model=PredictionPublic)
def replace_prediction(
    prediction_id: int, body: PredictionUpdate, session: SessionDep, user: CurrentUser
) -> PredictionPublic:
    return service.update(session, user, prediction_id, body)


@router.delete("/{prediction_id}/", status_code=204)
def delete_prediction(prediction_id: int, session: SessionDep, user: CurrentUser) -> Response:
    service.delete(session, user, prediction_id)
    return Response(status_code=204)
