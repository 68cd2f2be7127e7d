"""Calls to ML backends: snapshot what a call needs, call, record the outcome.

No remote call ever runs inside a database transaction: these functions read what they need into
plain snapshots (BackendRef, ProjectRef), end the read, call the backend (bounded by timeouts),
then record the outcome in a new short transaction. Backend failures end up on the backend row
(state ER and error_message) and in kubelabel_ml_requests_total; they never fail an import or an
annotation. The jobs (api_server.ml.jobs) and the API's service (api_server.ml.service) call here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api_server.common.time import as_utc
from api_server.db.base import utcnow
from api_server.db.models import MLBackend, Project
from api_server.db.session import session_scope
from api_server.ml import repository
from api_server.ml.client import BackendAuth, MLBackendClient, RetryPolicy
from api_server.ml.errors import MLBackendError, MLBackendHTTPError
from api_server.ml.metrics import ML_PREDICTIONS, ML_TRAININGS, observe
from api_server.ml.protocol import ModelPrediction
from api_server.ml.schemas import AuthMethod, State
from api_server.ml.settings import get_ml_settings

# --- snapshots: what a remote call needs, detached from any session -------------------------


@dataclass(frozen=True)
class BackendRef:
    id: int
    project_id: int
    url: str
    timeout: float
    auth_method: str
    basic_auth_user: str | None
    basic_auth_pass: str | None
    extra_params: dict[str, Any]
    auto_update: bool
    model_version: str

    @classmethod
    def of(cls, row: MLBackend) -> BackendRef:
        return cls(
            id=row.id,
            project_id=row.project_id,
            url=row.url,
            timeout=row.timeout,
            auth_method=row.auth_method,
            basic_auth_user=row.basic_auth_user,
            basic_auth_pass=row.basic_auth_pass,
            extra_params=dict(row.extra_params or {}),
            auto_update=row.auto_update,
            model_version=row.model_version,
        )

    def client(self, *, timeout: float | None = None, interactive: bool = False) -> MLBackendClient:
        """A client for this backend; `interactive`: someone waits for the answer, so no retries."""
        settings = get_ml_settings()
        if self.auth_method == AuthMethod.basic and self.basic_auth_user:
            auth = BackendAuth(basic_user=self.basic_auth_user, basic_pass=self.basic_auth_pass)
        elif settings.auth_header:
            auth = BackendAuth(headers={"Authorization": settings.auth_header})
        else:
            auth = None
        return MLBackendClient(
            self.url,
            timeout=min(timeout, self.timeout) if timeout else self.timeout,
            auth=auth,
            retry=RetryPolicy(attempts=1 if interactive else settings.retries),
            batch_size=settings.predict_batch_size,
            observer=observe,
        )


@dataclass(frozen=True)
class ProjectRef:
    id: int
    label_config: str
    ls_ref: str  # Label Studio's "<id>.<created timestamp>" project field
    payload: dict[str, Any]

    @classmethod
    def of(cls, project: Project) -> ProjectRef:
        created = as_utc(project.created_at)
        return cls(
            id=project.id,
            label_config=project.label_config,
            ls_ref=f"{project.id}.{int(created.timestamp())}",
            payload=repository.project_json(project),
        )


def snapshots(factory: sessionmaker[Session], backend_id: int) -> tuple[BackendRef, ProjectRef] | None:
    with factory() as session:
        row = repository.get(session, backend_id)
        if row is None:
            return None
        project = session.get(Project, row.project_id)
        if project is None:
            return None
        return BackendRef.of(row), ProjectRef.of(project)


def record(
    factory: sessionmaker[Session],
    backend_id: int,
    state: State,
    *,
    error: str | None = None,
    model_version: str | None = None,
) -> None:
    """Write the outcome of a call on the backend row (its own short transaction)."""
    with session_scope(factory) as session:
        row = repository.get(session, backend_id)
        if row is None:
            return
        row.state = state.value
        row.error_message = error[:4000] if error else None
        if model_version is not None and model_version != row.model_version:
            row.model_version = model_version
            project = session.get(Project, row.project_id)
            # auto_update: the project follows the backend's newest model (Label Studio's meaning).
            if project is not None and row.auto_update:
                project.model_version = model_version


# --- connecting ------------------------------------------------------------------------------


def connect(factory: sessionmaker[Session], backend_id: int) -> bool:
    """GET /health then POST /setup; records CO and the model version, or ER and why."""
    refs = snapshots(factory, backend_id)
    if refs is None:
        return False
    backend, project = refs
    try:
        with backend.client(timeout=get_ml_settings().check_timeout, interactive=True) as client:
            client.health()
            setup = client.setup(
                project=project.ls_ref,
                label_config=project.label_config,
                model_version=backend.model_version or None,
                extra_params=backend.extra_params,
            )
    except MLBackendError as exc:
        record(factory, backend_id, State.error, error=exc.message)
        return False
    record(factory, backend_id, State.connected, model_version=setup.model_version or "")
    return True


# --- predictions -----------------------------------------------------------------------------


@dataclass
class PredictOutcome:
    model_version: str
    predictions: int = 0
    tasks: int = 0
    error: str | None = None


def _stored(prediction: ModelPrediction | None, backend: BackendRef) -> tuple[list[Any], float | None, str] | None:
    if prediction is None or not prediction.result:
        return None
    return prediction.result, prediction.effective_score(), prediction.model_version or backend.model_version


def predict_tasks(
    factory: sessionmaker[Session], backend_id: int, task_ids: Iterable[int] | None, *, only_unlabeled: bool = True
) -> PredictOutcome:
    """Ask the backend for predictions of `task_ids` (None: every, or every unlabeled, task).

    Tasks go out in the client's batches; each chunk's predictions are committed as they
    arrive, so a failure half-way keeps what was already predicted. The first failure stops
    the run (a broken backend is not hammered) and is recorded on the backend row.
    """
    refs = snapshots(factory, backend_id)
    if refs is None:
        return PredictOutcome(model_version="", error="backend or project is gone")
    backend, project = refs
    outcome = PredictOutcome(model_version=backend.model_version)
    record(factory, backend_id, State.predicting, model_version=None)
    read = factory()
    try:
        chunks = (
            repository.tasks_by_ids(read, project.id, task_ids)
            if task_ids is not None
            else repository.tasks_needing_prediction(read, project.id, only_unlabeled=only_unlabeled)
        )
        with backend.client() as client:
            for chunk in chunks:
                payload = [repository.task_json(t) for t in chunk]
                read.rollback()  # end the read transaction before the remote call
                requested_at = utcnow()
                predictions = client.predict(
                    payload,
                    label_config=project.label_config,
                    project=project.ls_ref,
                    model_version=backend.model_version or None,
                )
                items = []
                for task, prediction in zip(payload, predictions, strict=True):
                    fields = _stored(prediction, backend)
                    if fields is not None:
                        items.append((task["id"], *fields))
                        outcome.model_version = fields[2] or outcome.model_version
                with session_scope(factory) as session:
                    stored = repository.replace_predictions(
                        session, project_id=project.id, backend_id=backend.id, items=items, requested_at=requested_at
                    )
                outcome.tasks += len(payload)
                outcome.predictions += stored
                ML_PREDICTIONS.labels(str(project.id)).inc(stored)
    except MLBackendError as exc:
        outcome.error = exc.message
    finally:
        read.close()
    # The model version is only learnt from /setup: a slow run of an older model finishing
    # late must not roll the backend's version back.
    record(factory, backend_id, State.error if outcome.error else State.connected, error=outcome.error)
    return outcome


def predict_one_task(
    factory: sessionmaker[Session], backend: BackendRef, project: ProjectRef, payload: dict[str, Any], context: Any
) -> dict[str, Any] | None:
    """One task's prediction, not stored (someone waits: no retries); a failure is recorded and raised."""
    try:
        with backend.client(interactive=True) as client:
            (prediction,) = client.predict(
                [payload],
                label_config=project.label_config,
                project=project.ls_ref,
                params={"context": context},
            )
    except MLBackendError as exc:
        record(factory, backend.id, State.error, error=exc.message)
        raise
    return prediction.model_dump() if prediction is not None else None


# --- training --------------------------------------------------------------------------------


@dataclass
class TrainOutcome:
    model_version: str
    result: Any = None
    error: str | None = None


def train(factory: sessionmaker[Session], backend_id: int, *, repredict: bool = True) -> TrainOutcome:
    """START_TRAINING on /webhook (legacy /train when /webhook is missing); then re-predict.

    After training the backend is asked (/setup) for its model version; when that changed
    and the backend has auto_update, the project's unlabeled tasks are predicted again, and
    the new predictions replace the old ones.
    """
    refs = snapshots(factory, backend_id)
    if refs is None:
        return TrainOutcome(model_version="", error="backend or project is gone")
    backend, project = refs
    record(factory, backend_id, State.training)
    try:
        with backend.client() as client:
            try:
                reply = client.webhook("START_TRAINING", {"project": project.payload})
            except MLBackendHTTPError as exc:
                if exc.status_code not in (404, 405):
                    raise
                reply = client.train(
                    project=project.ls_ref, label_config=project.label_config, annotations=_annotated(factory, project)
                )
            setup = client.setup(
                project=project.ls_ref, label_config=project.label_config, extra_params=backend.extra_params
            )
    except MLBackendError as exc:
        ML_TRAININGS.labels(str(project.id), "error").inc()
        record(factory, backend_id, State.error, error=exc.message)
        return TrainOutcome(model_version=backend.model_version, error=exc.message)
    ML_TRAININGS.labels(str(project.id), "ok").inc()
    version = setup.model_version or backend.model_version
    record(factory, backend_id, State.connected, model_version=version)
    if repredict and backend.auto_update and version != backend.model_version:
        predict_tasks(factory, backend_id, None, only_unlabeled=True)
    return TrainOutcome(model_version=version, result=reply.result)


def send_event(factory: sessionmaker[Session], backend_id: int, action: str, payload: dict[str, Any]) -> bool:
    """Pass a Label Studio webhook event (ANNOTATION_CREATED, ...) to the backend's /webhook."""
    refs = snapshots(factory, backend_id)
    if refs is None:
        return False
    backend, _ = refs
    try:
        with backend.client() as client:
            client.webhook(action, payload)
    except MLBackendError as exc:
        record(factory, backend_id, State.error, error=exc.message)
        return False
    return True


def _annotated(factory: sessionmaker[Session], project: ProjectRef) -> list[dict[str, Any]]:
    """Annotations with their tasks, for backends that still train through POST /train."""
    with factory() as session:
        return repository.annotations_with_tasks(session, project.id)


def versions(backend: BackendRef) -> tuple[list[str], str]:
    """The model versions the backend lists, or its current one and why there is no list."""
    try:
        with backend.client(timeout=get_ml_settings().check_timeout, interactive=True) as client:
            reply = client.versions(project=str(backend.project_id))
    except MLBackendError as exc:
        return (
            [backend.model_version] if backend.model_version else []
        ), f"backend has no versions list: {exc.message}"
    listed = reply.versions or ([reply.model_version] if reply.model_version else [])
    return listed, ""
