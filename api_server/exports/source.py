"""What an export selects (project, annotated-only, ids), a batch of it, and whole-selection facts.

Batches themselves are read by exports.rawsql: keyset pages (`id > last ORDER BY id LIMIT n`)
plus one annotation query per page, so memory stays flat whatever the project's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, func, select, text
from sqlalchemy.orm import Session

from api_server.db.models import Task


@dataclass(frozen=True)
class Selection:
    project_id: int
    annotated_only: bool
    ids: Sequence[int] | None = None


@dataclass
class Batch:
    tasks: list[Any]
    annotations: dict[int, list[Any]]
    predictions: dict[int, list[Any]]


def data_keys(session: Session, selection: Selection) -> list[str]:
    """Every key of the selected tasks' data (CSV needs its columns before the first row)."""
    dialect = session.get_bind().dialect.name
    where = "project_id = :pid"
    if selection.annotated_only:
        where += " AND total_annotations + cancelled_annotations > 0"
    params: dict[str, Any] = {"pid": selection.project_id}
    if dialect == "postgresql":
        sql = f"SELECT DISTINCT jsonb_object_keys(data) FROM tasks WHERE {where}"
    else:
        sql = f"SELECT DISTINCT j.key FROM tasks, json_each(tasks.data) AS j WHERE {where}"
    if selection.ids is not None:
        # An explicit selection is small enough to read its keys from the rows themselves.
        stmt = select(cast(Task.data, Text)).where(Task.project_id == selection.project_id, Task.id.in_(selection.ids))
        from api_server.exports import jsontext

        keys: set[str] = set()
        for (raw,) in session.execute(stmt):
            keys.update(jsontext.loads(raw))
        return sorted(keys)
    return sorted(k for (k,) in session.execute(text(sql), params))


def count(session: Session, selection: Selection) -> int:
    stmt = select(func.count()).select_from(Task).where(Task.project_id == selection.project_id)
    if selection.annotated_only:
        stmt = stmt.where((Task.total_annotations + Task.cancelled_annotations) > 0)
    if selection.ids is not None:
        stmt = stmt.where(Task.id.in_(selection.ids))
    return session.scalar(stmt) or 0
