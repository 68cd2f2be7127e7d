"""Prediction rules: results checked like annotations; task counters and prediction_score kept current."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_server.annotations.validation import validate_result
from api_server.common.errors import BadRequest, NotFound
from api_server.db.models import Prediction, ProjectMember, Task, User
from api_server.predictions.schemas import PredictionCreate, PredictionPublic, PredictionUpdate, to_public
from api_server.tasks import counters
from api_server.users.roles import Role
from api_server.workflow import public as workflow
from api_server.workflow.public import project_access, task_access


def list_predictions(
    session: Session, user: User, *, task_id: int | None, project_id: int | None
) -> list[PredictionPublic]:
    stmt = select(Prediction)
    if task_id is not None:
        task, _, _ = task_access(session, user, task_id, Role.viewer)
        stmt = stmt.where(Prediction.task_id == task.id)
    if project_id is not None:
        project_access(session, user, project_id, Role.viewer)
        stmt = stmt.where(Prediction.project_id == project_id)
    if task_id is None and project_id is None and user.role != Role.admin.value:
        member_of = select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)
        stmt = stmt.where(Prediction.project_id.in_(member_of))
    return [to_public(p) for p in session.scalars(stmt.order_by(Prediction.id))]


def create(session: Session, user: User, body: PredictionCreate) -> PredictionPublic:
    task, project, _ = task_access(session, user, body.task, Role.manager)
    if body.project not in (None, project.id):
        raise BadRequest(
            f"project: task {task.id} belongs to project {project.id}", validation_errors={"project": ["mismatch"]}
        )
    validate_result(project.label_config, body.result)
    with workflow.writing(session):
        row = Prediction(
            task_id=task.id,
            project_id=project.id,
            result=body.result,
            score=body.score,
            model_version=body.model_version if body.model_version is not None else project.model_version,
        )
        session.add(row)
        session.flush()
        counters.refresh(session, [task.id])
        public = to_public(row)
        session.commit()
    return public


def _access(session: Session, user: User, prediction_id: int, minimum: Role) -> Prediction:
    row = session.get(Prediction, prediction_id)
    if row is None:
        raise NotFound(f"prediction {prediction_id} does not exist")
    project_access(session, user, row.project_id, minimum)
    return row


def get(session: Session, user: User, prediction_id: int) -> PredictionPublic:
    return to_public(_access(session, user, prediction_id, Role.viewer))


def update(session: Session, user: User, prediction_id: int, body: PredictionUpdate) -> PredictionPublic:
    row = _access(session, user, prediction_id, Role.manager)
    project, _ = project_access(session, user, row.project_id, Role.manager)
    changes = body.model_dump(exclude_unset=True)
    touched = {row.task_id}
    if changes.get("task") not in (None, row.task_id):
        target = session.get(Task, changes["task"])
        if target is None or target.project_id != row.project_id:
            raise BadRequest(
                f"task: task {changes['task']} is not in project {row.project_id}",
                validation_errors={"task": ["not in this project"]},
            )
        touched.add(target.id)
    if changes.get("result") is not None:
        validate_result(project.label_config, changes["result"])
    with workflow.writing(session):
        row = session.get(Prediction, prediction_id, populate_existing=True)  # type: ignore[assignment]  # None checked below
        if row is None:
            raise NotFound(f"prediction {prediction_id} does not exist")
        if changes.get("task") is not None:
            row.task_id = changes["task"]
        for key in ("result", "model_version"):
            if changes.get(key) is not None:
                setattr(row, key, changes[key])
        if "score" in changes:
            row.score = changes["score"]
        session.flush()
        counters.refresh(session, touched)
        public = to_public(row)
        session.commit()
    return public


def delete(session: Session, user: User, prediction_id: int) -> None:
    row = _access(session, user, prediction_id, Role.manager)
    task_id = row.task_id
    with workflow.writing(session):
        session.execute(Prediction.__table__.delete().where(Prediction.id == prediction_id))
        counters.refresh(session, [task_id])
        session.commit()
