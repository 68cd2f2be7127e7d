"""What an export selects (project, annotated-only, ids, a view's filters), a batch of it, whole-selection facts.

Batches themselves are read by exports.rawsql: keyset pages (`id > last ORDER BY id LIMIT n`)
plus one annotation query per page, so memory stays flat whatever the project's size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Text, bindparam, cast, func, select, text
from sqlalchemy.orm import Session

from api_server.db.models import Task


@dataclass(frozen=True)
class Selection:
    project_id: int
    annotated_only: bool
    ids: Sequence[int] | None = None
    # A view's compiled filters (views.filters): the export walks the ids they select, page by page.
    where: ColumnElement[bool] | None = None
    # Bucket URIs in task data rewritten to the presign endpoint (Label Studio's resolve_uri).
    resolve: bool = False


def view_id_pages(session: Session, selection: Selection, size: int) -> Iterator[list[int]]:
    """The ids the view admits, in id order, `size` at a time (keyset pages: the database filters)."""
    assert selection.where is not None
    stmt = select(Task.id).where(Task.project_id == selection.project_id, selection.where)
    if selection.annotated_only:
        stmt = stmt.where((Task.total_annotations + Task.cancelled_annotations) > 0)
    if selection.ids is not None:
        stmt = stmt.where(Task.id.in_(selection.ids))
    last = None
    while True:
        page = stmt if last is None else stmt.where(Task.id > last)
        ids = list(session.scalars(page.order_by(Task.id).limit(size)))
        if ids:
            yield ids
        if len(ids) < size:
            return
        last = ids[-1]


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
    if selection.where is not None:
        # A view: the keys of its tasks, one page of ids at a time.
        found: set[str] = set()
        paged = text(f"{sql} AND tasks.id IN :ids").bindparams(bindparam("ids", expanding=True))
        for ids in view_id_pages(session, selection, 5000):
            found.update(k for (k,) in session.execute(paged, {**params, "ids": ids}))
        return sorted(found)
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
    if selection.where is not None:
        stmt = stmt.where(selection.where)
    return session.scalar(stmt) or 0
