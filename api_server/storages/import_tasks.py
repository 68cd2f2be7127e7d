"""Create the tasks of a sync batch through the bulk import path (imports.validation/writer).

Runs inside the caller's transaction, so tasks and their storage links commit together.
Rows that fail validation (a task file row without the config's data fields, say) are
reported per row instead of failing the batch: a sync imports what it can and counts the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api_server import events
from api_server.common.time import utcnow
from api_server.db.models import Project, Task
from api_server.imports.validation import RowError, TaskIn, TaskValidator
from api_server.imports.writer import TaskWriter
from api_server.labelconfig.parser import LabelConfigError, parse
from api_server.tasks import counters


@dataclass
class Created:
    ids: list[int | None] = field(default_factory=list)  # None where the row was invalid
    errors: list[str] = field(default_factory=list)


def lock_project(session: Session, project_id: int) -> None:
    """Serialise writers of one project (inner ids; on SQLite also the id allocation)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT id FROM projects WHERE id = :id FOR UPDATE"), {"id": project_id})
    else:
        session.execute(text("UPDATE projects SET id = id WHERE id = :id"), {"id": project_id})


def variables_of(project: Project) -> set[str]:
    try:
        return parse(project.label_config).variables
    except LabelConfigError:
        return set()


def create_tasks(
    session: Session, project_id: int, tasks: list[dict[str, Any]], labels: list[str], user_id: int | None = None
) -> Created:
    """Insert Label Studio task dicts; `labels` name each row in error messages. Caller holds the lock."""
    out = Created()
    project = session.get(Project, project_id)
    if project is None or not tasks:
        out.ids = [None] * len(tasks)
        return out
    validator = TaskValidator(variables_of(project))
    valid: list[TaskIn] = []
    for task, label in zip(tasks, labels, strict=True):
        try:
            valid.append(validator.task(task))
            out.ids.append(0)
        except RowError as exc:
            out.ids.append(None)
            out.errors.append(f"{label}: {exc}")
    if not valid:
        return out
    last_inner = session.scalar(
        select(Task.inner_id).where(Task.project_id == project_id).order_by(Task.id.desc()).limit(1)
    )
    writer = TaskWriter(
        session,
        project_id=project_id,
        user_id=user_id or project.created_by_id,  # type: ignore[arg-type]  # None once the creator is deleted (as before)
        overlap=project.maximum_annotations,
        next_inner_id=(last_inner or 0) + 1,
        now=utcnow(),
    )
    new_ids = iter(writer.write(valid, None))
    out.ids = [next(new_ids) if i is not None else None for i in out.ids]
    if writer.annotated_task_ids:
        counters.refresh(session, writer.annotated_task_ids)
    events.publish(
        session, project_id, "TASKS_CREATED", task_count=writer.task_ids.count, task_id_ranges=writer.task_ids.runs
    )
    return out
