"""/api/ml: ML backends of a project (Label Studio paths and shapes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from api_server.common.routing import DualSlashRouter
from api_server.deps import CurrentUser, SessionDep
from api_server.ml import service
from api_server.ml.schemas import (
    InteractiveRequest,
    InteractiveResponse,
    MLBackendCreate,
    MLBackendPublic,
    MLBackendUpdate,
    PredictRequest,
    PredictResponse,
    TrainRequest,
    TrainResponse,
    VersionsResponse,
)
from api_server.users.roles import Role

router = DualSlashRouter(prefix="/api/ml", tags=["ml"])


@router.get("/", response_model=list[MLBackendPublic])
def list_backends(
    session: SessionDep,
    user: CurrentUser,
    project: Annotated[int | None, Query(description="only this project's backends")] = None,
) -> list[MLBackendPublic]:
    """ML backends (a plain list, as Label Studio answers)."""
    return service.list_backends(session, user, project)


@router.post("/", response_model=MLBackendPublic, status_code=201)
def create_backend(body: MLBackendCreate, session: SessionDep, user: CurrentUser) -> MLBackendPublic:
    """Register a backend and check it (/health, /setup).

    A non-empty title already used in the project updates that backend instead (registration
    is idempotent by title). An unreachable backend is registered with state ER and the reason.
    """
    return service.create_backend(session, user, body)


@router.get("/{backend_id}", response_model=MLBackendPublic)
def get_backend(backend_id: int, session: SessionDep, user: CurrentUser) -> MLBackendPublic:
    """The backend, its state refreshed by /health and /setup (bounded by KUBELABEL_ML_CHECK_TIMEOUT)."""
    return service.get_backend(session, user, backend_id)


@router.patch("/{backend_id}", response_model=MLBackendPublic)
def update_backend(backend_id: int, body: MLBackendUpdate, session: SessionDep, user: CurrentUser) -> MLBackendPublic:
    return service.update_backend(session, user, backend_id, body)


@router.delete("/{backend_id}", status_code=204)
def delete_backend(backend_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Unregister the backend; its predictions stay."""
    service.delete_backend(session, user, backend_id)
    return Response(status_code=204)


@router.post("/{backend_id}/train", response_model=TrainResponse)
def train(backend_id: int, session: SessionDep, user: CurrentUser, body: TrainRequest | None = None) -> TrainResponse:
    """Start training (START_TRAINING on the backend's /webhook); new predictions follow in the background.

    A backend that fails or cannot be reached answers 502 with the reason (Label Studio answers
    500 with a JSON string; a 500 here would say the API itself broke).
    """
    outcome = service.train_now(session, user, backend_id)
    return TrainResponse(model_version=outcome.model_version, result=outcome.result)


@router.post("/{backend_id}/predict", response_model=PredictResponse)
def predict(backend_id: int, body: PredictRequest, session: SessionDep, user: CurrentUser) -> PredictResponse:
    """Predict selected tasks now and store the predictions (new ones replace the backend's old ones).

    `task_ids`, or Label Studio's `selectedItems` ({"all": false, "included": [...]}, or
    {"all": true} for every task). A failing backend answers 502 with the reason.
    """
    ids = body.task_ids
    selected = body.selectedItems
    if ids is None and selected is not None and not selected.get("all"):
        ids = [int(i) for i in selected.get("included") or []]
    outcome = service.predict_selected(session, user, backend_id, ids)
    return PredictResponse(model_version=outcome.model_version, predictions=outcome.predictions, tasks=outcome.tasks)


@router.post("/{backend_id}/predict/test")
def predict_test(backend_id: int, session: SessionDep, user: CurrentUser) -> dict[str, object]:
    """Ask the backend to predict the project's first task (nothing is stored)."""
    prediction = service.predict_one(session, user, backend_id)
    return {"status": "ok", "prediction": prediction}


@router.post("/{backend_id}/interactive-annotating", response_model=InteractiveResponse)
def interactive_annotating(
    backend_id: int, body: InteractiveRequest, session: SessionDep, user: CurrentUser
) -> InteractiveResponse:
    """A prediction for one task with the annotator's `context` (clicks, keypoints); not stored."""
    prediction = service.predict_one(
        session, user, backend_id, context=body.context, task_id=body.task, minimum=Role.annotator
    )
    return InteractiveResponse(data=prediction)


@router.get("/{backend_id}/versions", response_model=VersionsResponse)
def versions(backend_id: int, session: SessionDep, user: CurrentUser) -> VersionsResponse:
    """Model versions the backend knows (its GET /versions), else just the current one."""
    listed, message = service.versions(session, user, backend_id)
    return VersionsResponse(versions=listed, message=message)
