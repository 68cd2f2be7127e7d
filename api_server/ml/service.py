"""ML backends as the API serves them: registration, access, and the calls API callers wait for.

The calls themselves (snapshots, the remote call, recording its outcome) are api_server.ml.remote;
this module checks who may do what, ends the request's transaction before any call, and turns a
failed call an API caller waits for into a 502 (MLBackendFailed), never a 500.
"""

from __future__ import annotations

import logging
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
from api_server.ml import remote, repository
from api_server.ml.enqueue import enqueue_predict
from api_server.ml.errors import MLBackendError
from api_server.ml.remote import BackendRef, PredictOutcome, ProjectRef, TrainOutcome
from api_server.ml.schemas import (
    READABLE_STATE,
    AuthMethod,
    MLBackendCreate,
    MLBackendPublic,
    MLBackendUpdate,
    State,
)
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
    remote.connect(_factory(session), backend_id)
    session.expire_all()
    row = repository.get(session, backend_id)
    assert row is not None
    return to_public(row)


# --- calls an API caller waits for ----------------------------------------------------------


def predict_selected(session: Session, user: User, backend_id: int, task_ids: list[int] | None) -> PredictOutcome:
    """On demand: predictions for the given tasks (all tasks of the project when None)."""
    row = _backend(session, user, backend_id)
    session.commit()
    outcome = remote.predict_tasks(_factory(session), row.id, task_ids, only_unlabeled=False)
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
    backend, project = BackendRef.of(row), ProjectRef.of(session.get(Project, row.project_id))  # type: ignore[arg-type]  # its project exists (a foreign key)
    session.commit()
    try:
        return remote.predict_one_task(_factory(session), backend, project, payload, context)
    except MLBackendError as exc:
        raise MLBackendFailed(exc.message) from None


def train_now(session: Session, user: User, backend_id: int) -> TrainOutcome:
    """POST /api/ml/{id}/train: train synchronously (bounded by the timeout), re-predict in background."""
    row = _backend(session, user, backend_id)
    session.commit()
    factory = _factory(session)
    before = row.model_version
    outcome = remote.train(factory, row.id, repredict=False)
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
    return remote.versions(backend)
