"""`POST /api/projects/{id}/import/predictions`: predictions for tasks that already exist, in bulk."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_server.common.errors import BadRequest
from api_server.common.inputs import InputError, check_value
from api_server.db.models import Task, User
from api_server.imports.validation import RowError, predictions_of
from api_server.imports.writer import TaskWriter
from api_server.projects import service as projects
from api_server.tasks import counters
from api_server.users.roles import Role

_CHUNK = 5000


def import_predictions(session: Session, user: User, project_id: int, items: list[Any]) -> int:
    project = projects.get_project(session, user, project_id, Role.manager)
    rows: list[tuple[int, Any]] = []
    row_numbers: list[int] = []
    errors: dict[str, list[str]] = {}
    for n, item in enumerate(items, start=1):
        try:
            if type(item) is not dict:
                raise RowError("a prediction must be a JSON object")
            try:
                check_value(item)
            except InputError as exc:
                raise RowError(str(exc)) from None
            task_id = item.get("task")
            if type(task_id) is not int:
                raise RowError("task must be the id of a task of this project")
            unknown = set(item) - {"task", "result", "score", "model_version", "project", "model", "model_run"}
            if unknown:
                raise RowError(f"unknown field(s): {', '.join(sorted(unknown))}")
            (prediction,) = predictions_of([item])
            rows.append((task_id, prediction))
            row_numbers.append(n)
        except RowError as exc:
            errors[f"row {n}"] = [str(exc).replace("predictions[0].", "")]
    wanted = sorted({t for t, _ in rows})
    found: set[int] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        found.update(session.scalars(select(Task.id).where(Task.project_id == project.id, Task.id.in_(chunk))))
    for n, (task_id, _) in zip(row_numbers, rows, strict=True):
        if task_id not in found:
            errors.setdefault(f"row {n}", []).append(f"task {task_id} does not exist in project {project.id}")
    if errors:
        first, messages = next(iter(errors.items()))
        raise BadRequest(f"{first}: {messages[0]}; nothing was imported", validation_errors=errors)
    if not rows:
        return 0
    writer = TaskWriter(
        session,
        project_id=project.id,
        user_id=user.id,
        overlap=project.maximum_annotations,
        next_inner_id=0,
        now=datetime.now(UTC),
    )
    writer.write_predictions(rows)
    counters.refresh(session, wanted)
    session.commit()
    return len(rows)
