"""ML backend rules: registration, connection state, predictions, training, interactive annotating.

No remote call ever runs inside a database transaction: the service reads what it needs into
plain snapshots, commits, calls the backend (bounded by timeouts), then records the outcome
in a new short transaction. Backend failures end up on the backend row (state ER and
error_message) and in kubelabel_ml_requests_total; they never fail an import or an annotation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api_server.common import egress
from api_server.common.errors import ApiError, BadRequest, NotFound
from api_server.common.secrets import masked_url, scrubbed, unmasked_url, url_password
from api_server.common.time import as_utc
from api_server.db.base import utcnow
from api_server.db.models import MLBackend, Project, User
from api_server.db.session import make_session_factory, session_scope
from api_server.ml import repository
from api_server.ml.client import BackendAuth, MLBackendClient, RetryPolicy
from api_server.ml.errors import MLBackendError, MLBackendHTTPError
from api_server.ml.metrics import ML_PREDICTIONS, ML_TRAININGS, observe
from api_server.ml.protocol import ModelPrediction
from api_server.ml.queue import enqueue_predict
from api_server.ml.schemas import (
    READABLE_STATE,
    AuthMethod,
    MLBackendCreate,
    MLBackendPublic,
    MLBackendUpdate,
    State,
)
from api_server.ml.settings import get_ml_settings
from api_server.projects.service import get_project
from api_server.users.roles import Role, at_least
from api_server.users.service import project_role

log = logging.getLogger(__name__)

# Fields clients may send but kubelabel owns (it learns them from the backend).
_SERVER_OWNED = {"model_version", "state", "error_message", "readable_state", "project"}


# A backend shown as training/predicting for longer than this is checked again (its job died).
BUSY_FOR_AT_MOST = timedelta(minutes=30)


class MLBackendFailed(ApiError):
    """The backend could not serve a request made on behalf of an API caller (502, never a 500)."""

    status_code = 502


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


# --- public shape and access -----------------------------------------------------------------


def to_public(row: MLBackend) -> MLBackendPublic:
    state = State(row.state) if row.state in {s.value for s in State} else State.disconnected
    return MLBackendPublic(
        id=row.id,
        url=masked_url(row.url),  # a password in the URL is write-only, as basic_auth_pass
        title=row.title,
        description=row.description,
        project=row.project_id,
        is_interactive=row.is_interactive,
        auth_method=row.auth_method,
        basic_auth_user=row.basic_auth_user,
        basic_auth_pass_is_set=bool(row.basic_auth_pass),
        timeout=row.timeout,
        extra_params=row.extra_params or {},
        auto_update=row.auto_update,
        model_version=row.model_version,
        state=state.value,
        readable_state=READABLE_STATE[state],
        error_message=scrubbed(row.error_message, url_password(row.url), row.basic_auth_pass),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def _backend(session: Session, user: User, backend_id: int, minimum: Role = Role.manager) -> MLBackend:
    row = repository.get(session, backend_id)
    if row is None:
        raise NotFound(f"ML backend {backend_id} does not exist")
    get_project(session, user, row.project_id, minimum)
    return row


def _factory(session: Session) -> sessionmaker[Session]:
    bind = session.get_bind()
    return make_session_factory(bind if isinstance(bind, Engine) else bind.engine)


# --- registration ----------------------------------------------------------------------------


def list_backends(session: Session, user: User, project_id: int | None) -> list[MLBackendPublic]:
    if project_id is not None:
        get_project(session, user, project_id, Role.manager)
        return [to_public(r) for r in repository.list_for_projects(session, [project_id])]
    rows = repository.list_for_projects(session, None)
    if user.role != Role.admin:
        allowed: dict[int, bool] = {}
        for row in rows:
            if row.project_id not in allowed:
                role = project_role(session, user, row.project_id)
                allowed[row.project_id] = role is not None and at_least(role, Role.manager)
        rows = [r for r in rows if allowed[r.project_id]]
    return [to_public(r) for r in rows]


def _apply(row: MLBackend, fields: MLBackendUpdate) -> None:
    for key, value in fields.model_dump(exclude_unset=True).items():
        if key in _SERVER_OWNED or (value is None and key not in {"basic_auth_user", "basic_auth_pass"}):
            continue
        if key == "url":
            value = unmasked_url(value, row.url)  # the masked URL of a GET sent back keeps the password
        setattr(row, key, value.value if hasattr(value, "value") else value)
    if "url" in fields.model_fields_set and row.url:
        try:
            egress.check_url(row.url, "ml", unresolved_ok=True)  # and again at every call
        except egress.EgressRefused as exc:
            raise BadRequest(f"url: {exc.reason}", validation_errors={"url": [exc.reason]}) from None
    if row.auth_method == AuthMethod.basic and not row.basic_auth_user:
        raise BadRequest(
            "basic_auth_user: required when auth_method is BASIC_AUTH",
            validation_errors={"basic_auth_user": ["required when auth_method is BASIC_AUTH"]},
        )


def create_backend(session: Session, user: User, body: MLBackendCreate) -> MLBackendPublic:
    """Register a backend and connect to it. Idempotent by title within a project.

    A backend that cannot be reached is still registered (state ER, with the reason): in a
    cluster the model server often starts after its registration.
    """
    get_project(session, user, body.project, Role.manager)
    row = repository.find_by_title(session, body.project, body.title) if body.title else None
    if row is None:
        row = MLBackend(project_id=body.project, state=State.disconnected.value)
        session.add(row)
    _apply(row, body)
    session.commit()
    return _connect_and_show(session, row.id)


def update_backend(session: Session, user: User, backend_id: int, body: MLBackendUpdate) -> MLBackendPublic:
    row = _backend(session, user, backend_id)
    if body.project is not None and body.project != row.project_id:
        raise BadRequest(
            "project: an ML backend cannot move to another project",
            validation_errors={"project": ["cannot be changed"]},
        )
    _apply(row, body)
    session.commit()
    return _connect_and_show(session, row.id)


def get_backend(session: Session, user: User, backend_id: int) -> MLBackendPublic:
    """The backend, with its state refreshed by /health and /setup (as Label Studio does)."""
    row = _backend(session, user, backend_id)
    busy_since = as_utc(row.updated_at)
    if row.state in {State.training, State.predicting} and utcnow() - busy_since < BUSY_FOR_AT_MOST:
        return to_public(row)  # busy: its own work will record the outcome
    session.commit()
    return _connect_and_show(session, row.id)


def delete_backend(session: Session, user: User, backend_id: int) -> None:
    row = _backend(session, user, backend_id)
    session.delete(row)
    session.commit()


def _connect_and_show(session: Session, backend_id: int) -> MLBackendPublic:
    connect(_factory(session), backend_id)
    session.expire_all()
    row = repository.get(session, backend_id)
    assert row is not None
    return to_public(row)


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


def predict_selected(session: Session, user: User, backend_id: int, task_ids: list[int] | None) -> PredictOutcome:
    """On demand: predictions for the given tasks (all tasks of the project when None)."""
    row = _backend(session, user, backend_id)
    session.commit()
    outcome = predict_tasks(_factory(session), row.id, task_ids, only_unlabeled=False)
    if outcome.error:
        raise MLBackendFailed(
            f"ML backend {row.id} failed after {outcome.predictions} predictions: {outcome.error}",
            extra={"predictions": outcome.predictions, "tasks": outcome.tasks},
        )
    return outcome


def predict_one(
    session: Session,
    user: User,
    backend_id: int,
    context: Any = None,
    task_id: int | None = None,
    minimum: Role = Role.manager,
) -> dict[str, Any] | None:
    """One task's prediction, not stored: interactive pre-annotation and the connection test."""
    row = _backend(session, user, backend_id, minimum)
    if task_id is None:
        task = repository.first_task(session, row.project_id)
        if task is None:
            raise BadRequest("the project has no task to predict")
    else:
        found = next(repository.tasks_by_ids(session, row.project_id, [task_id]), [])
        if not found:
            raise NotFound(f"task {task_id} does not exist in project {row.project_id}")
        task = found[0]
    payload = repository.task_json(task)
    backend, project = BackendRef.of(row), ProjectRef.of(session.get(Project, row.project_id))  # type: ignore[arg-type]
    session.commit()
    try:
        with backend.client(interactive=True) as client:
            (prediction,) = client.predict(
                [payload],
                label_config=project.label_config,
                project=project.ls_ref,
                params={"context": context},
            )
    except MLBackendError as exc:
        record(_factory(session), row.id, State.error, error=exc.message)
        raise MLBackendFailed(exc.message) from None
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


def train_now(session: Session, user: User, backend_id: int) -> TrainOutcome:
    """POST /api/ml/{id}/train: train synchronously (bounded by the timeout), re-predict in background."""
    row = _backend(session, user, backend_id)
    session.commit()
    factory = _factory(session)
    before = row.model_version
    outcome = train(factory, row.id, repredict=False)
    if outcome.error:
        raise MLBackendFailed(f"training failed: {outcome.error}")
    if row.auto_update and outcome.model_version != before:
        with session_scope(factory) as work:
            enqueue_predict(work, row.id, None)
    return outcome


def versions(session: Session, user: User, backend_id: int) -> tuple[list[str], str]:
    row = _backend(session, user, backend_id)
    backend = BackendRef.of(row)
    session.commit()
    try:
        with backend.client(timeout=get_ml_settings().check_timeout, interactive=True) as client:
            reply = client.versions(project=str(backend.project_id))
    except MLBackendError as exc:
        return (
            [backend.model_version] if backend.model_version else []
        ), f"backend has no versions list: {exc.message}"
    listed = reply.versions or ([reply.model_version] if reply.model_version else [])
    return listed, ""
