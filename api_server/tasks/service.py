"""Task rules: who sees and changes which tasks, data checked against the config, events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api_server import events
from api_server.common.errors import BadRequest, NotFound
from api_server.db.models import Project, ProjectMember, Task, User
from api_server.labelconfig.parser import LabelConfigError, missing_variables, parse
from api_server.projects import service as projects
from api_server.tasks import repository, serialize
from api_server.tasks.repository import TaskFilter
from api_server.tasks.schemas import TaskCreate, TaskUpdate
from api_server.tasks.totals import CACHE as TOTALS
from api_server.users.roles import Role
from api_server.users.service import project_role
from api_server.views import service as views

# Deleted-task events list the ids up to this many tasks; bigger deletes carry the count and id ranges.
EVENT_FULL_PAYLOAD_LIMIT = 1000


def _visible_projects(session: Session, user: User) -> list[int] | None:
    if user.role == Role.admin:
        return None
    return list(session.scalars(select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)))


def _annotations_for(session: Session, user: User, project_id: int, task_ids: list[int]) -> dict[int, list[Any]]:
    # Annotators see only their own annotations.
    only = user.id if project_role(session, user, project_id) == Role.annotator else None
    return repository.annotations_of(session, task_ids, only_user=only)


def _model_versions(session: Session, project_ids: Iterable[int]) -> dict[int, str]:
    """Each project's chosen model version ('' when none): its predictions are listed first."""
    rows = session.execute(select(Project.id, Project.model_version).where(Project.id.in_(set(project_ids))))
    return {pid: version for pid, version in rows}


def list_tasks(
    session: Session,
    user: User,
    flt: TaskFilter,
    *,
    project_id: int | None,
    offset: int,
    limit: int,
    with_results: bool,
    view_id: int | None = None,
    query: Any = None,
    resolve: bool = False,
) -> tuple[list[dict[str, Any]], tuple[int, int, int]]:
    if view_id is not None and project_id is None:
        project_id = views.project_of(session, user, view_id)
    if project_id is not None:
        projects.get_project(session, user, project_id, Role.viewer)
        flt = replace(flt, project_ids=[project_id])
    else:
        visible = _visible_projects(session, user)
        if visible is not None:
            flt = replace(flt, project_ids=visible)
    if view_id is not None or query is not None:
        prepared = views.prepared(session, user, view_id=view_id, query=query, project_id=project_id)
        flt = replace(flt, where=prepared.where, order=prepared.order)
    rows = repository.page(session, flt, offset=offset, limit=limit)
    # Counted on a list's first page; the pages after it reuse that count (see tasks.totals).
    totals = TOTALS.get(
        (user.id, *repository.list_key(session, flt)),
        lambda: repository.totals(session, flt),
        fresh=offset == 0 and flt.after is None,
    )
    if not with_results:
        return [serialize.task_dict(r, resolve) for r in rows], totals
    versions = _model_versions(session, {r.project_id for r in rows})
    by_project: dict[int, list[int]] = {}
    for r in rows:
        by_project.setdefault(r.project_id, []).append(r.id)
    annotations: dict[int, list[Any]] = {}
    predictions: dict[int, list[Any]] = {}
    for pid, task_ids in by_project.items():
        annotations.update(_annotations_for(session, user, pid, task_ids))
        predictions.update(repository.predictions_of(session, task_ids, first_version=versions.get(pid, "")))
    out = [serialize.full_task_dict(r, annotations.get(r.id, []), predictions.get(r.id, []), resolve) for r in rows]
    return out, totals


def _task_row(session: Session, user: User, task_id: int, minimum: Role) -> Any:
    row = repository.one(session, task_id)
    if row is None:
        raise NotFound(f"task {task_id} does not exist")
    projects.get_project(session, user, row.project_id, minimum)
    return row


def get_task(session: Session, user: User, task_id: int, resolve: bool = False) -> dict[str, Any]:
    row = _task_row(session, user, task_id, Role.viewer)
    annotations = _annotations_for(session, user, row.project_id, [row.id]).get(row.id, [])
    version = _model_versions(session, [row.project_id]).get(row.project_id, "")
    predictions = repository.predictions_of(session, [row.id], first_version=version).get(row.id, [])
    return serialize.full_task_dict(row, annotations, predictions, resolve)


def _check_data(project: Project, data: dict[str, Any]) -> None:
    try:
        interface = parse(project.label_config)
    except LabelConfigError:
        return
    missing = missing_variables(interface, data)
    if missing:
        names = ", ".join(f"${m}" for m in missing)
        raise BadRequest(
            f"data: lacks {names} used by the project's label config",
            validation_errors={"data": [f"missing field(s) {names} required by the label config"]},
        )


def create_task(session: Session, user: User, body: TaskCreate) -> dict[str, Any]:
    project = projects.get_project(session, user, body.project, Role.manager)
    _check_data(project, body.data)
    # Same lock as imports: inner ids are allocated one project at a time.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT id FROM projects WHERE id = :id FOR UPDATE"), {"id": project.id})
    else:
        session.execute(text("UPDATE projects SET id = id WHERE id = :id"), {"id": project.id})
    task = Task(
        project_id=project.id,
        inner_id=repository.last_inner_id(session, project.id) + 1,
        data=body.data,
        meta=body.meta or {},
        overlap=project.maximum_annotations,
    )
    session.add(task)
    session.flush()
    row = repository.one(session, task.id)
    payload = serialize.task_dict(row)
    events.publish(
        session,
        project.id,
        "TASKS_CREATED",
        task_count=1,
        task_id_ranges=[[task.id, task.id]],
        tasks=[{"id": task.id, "data": body.data, "project": project.id}],
    )
    session.commit()
    return payload


def update_task(session: Session, user: User, task_id: int, body: TaskUpdate) -> dict[str, Any]:
    row = _task_row(session, user, task_id, Role.manager)
    task = session.get(Task, row.id)
    assert task is not None
    if body.project is not None and body.project != task.project_id:
        raise BadRequest(
            "project: a task cannot move to another project", validation_errors={"project": ["cannot be changed"]}
        )
    if body.data is not None:
        project = session.get(Project, task.project_id)
        assert project is not None
        _check_data(project, body.data)
        task.data = body.data
    if body.meta is not None:
        task.meta = body.meta
    task.updated_by_id = user.id
    task.updated_at = datetime.now(UTC)
    session.flush()
    session.commit()
    return get_task(session, user, task_id)


def delete_task(session: Session, user: User, task_id: int) -> None:
    row = _task_row(session, user, task_id, Role.manager)
    deleted = repository.delete_tasks(session, row.project_id, [row.id])
    _publish_deleted(session, row.project_id, deleted)
    session.commit()


def bulk_delete(session: Session, user: User, project_id: int, ids: list[int] | None) -> int:
    projects.get_project(session, user, project_id, Role.manager)
    deleted = repository.delete_tasks(session, project_id, ids)
    _publish_deleted(session, project_id, deleted)
    session.commit()
    return len(deleted)


def _publish_deleted(session: Session, project_id: int, ids: list[int]) -> None:
    if not ids:
        return
    ids.sort()
    runs: list[list[int]] = []
    for i in ids:
        if runs and runs[-1][1] + 1 == i:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    objects: dict[str, Any] = {"task_count": len(ids), "task_id_ranges": runs}
    if len(ids) <= EVENT_FULL_PAYLOAD_LIMIT:
        objects["tasks"] = [{"id": i} for i in ids]
    events.publish(session, project_id, "TASKS_DELETED", **objects)
