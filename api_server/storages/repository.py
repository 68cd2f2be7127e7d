"""Queries on storages and their links. No rules here: the service decides."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from api_server.db.base import utcnow
from api_server.db.models import Annotation, ExportLink, ExportStorage, ImportStorage, StorageLink, Task
from api_server.imports.bulk import BulkTable, copy_escape

StorageRow = ImportStorage | ExportStorage
_CHUNK = 5000  # bound parameters per IN list: far below SQLite's (>= 3.32) limit of 32766
LINK_COLUMNS = ("id", "storage_id", "task_id", "key", "etag", "row")


def model(direction: str) -> type[ImportStorage] | type[ExportStorage]:
    return ExportStorage if direction == "export" else ImportStorage


def get(session: Session, direction: str, type_: str, storage_id: int) -> StorageRow | None:
    row = get_for_update(session, direction, storage_id)
    return row if row is not None and row.type == type_ else None


def get_for_update(session: Session, direction: str, storage_id: int) -> StorageRow | None:
    # One class per call: given either class, session.get's result types as their common base.
    if direction == "export":
        return session.get(ExportStorage, storage_id)
    return session.get(ImportStorage, storage_id)


def by_external_name(session: Session, direction: str, name: str) -> StorageRow | None:
    cls = model(direction)
    return cast(StorageRow | None, session.scalars(select(cls).where(cls.external_name == name)).first())


def list_for_project(session: Session, direction: str, type_: str, project_id: int | None) -> list[StorageRow]:
    cls = model(direction)
    query = select(cls).where(cls.type == type_).order_by(cls.id)
    if project_id is not None:
        query = query.where(cls.project_id == project_id)
    return list(session.scalars(query))


def import_storages_of(session: Session, project_id: int) -> list[ImportStorage]:
    return list(session.scalars(select(ImportStorage).where(ImportStorage.project_id == project_id)))


def import_storage(session: Session, storage_id: int) -> ImportStorage | None:
    return session.get(ImportStorage, storage_id)


# The export storages of a project (bind `project_id`).
EXPORT_STORAGES_OF_PROJECT = select(ExportStorage.id).where(ExportStorage.project_id == bindparam("project_id"))


def export_storages_of(session: Session, project_id: int) -> list[ExportStorage]:
    return list(session.scalars(select(ExportStorage).where(ExportStorage.project_id == project_id)))


# -- import links ----------------------------------------------------------------------------


def known_etags(session: Session, storage_id: int, keys: list[str]) -> dict[str, str]:
    """key -> etag of row 0 (a task file counts as imported once its first row is linked)."""
    out: dict[str, str] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        rows = session.execute(
            select(StorageLink.key, StorageLink.etag).where(
                StorageLink.storage_id == storage_id, StorageLink.row == 0, StorageLink.key.in_(chunk)
            )
        )
        out.update({key: etag for key, etag in rows})
    return out


def links_for_keys(
    session: Session, storage_id: int, keys: Iterable[str]
) -> dict[tuple[str, int], tuple[int, int, str]]:
    """(key, row) -> (link id, task id, etag)."""
    key_list = sorted(set(keys))
    out: dict[tuple[str, int], tuple[int, int, str]] = {}
    for start in range(0, len(key_list), _CHUNK):
        chunk = key_list[start : start + _CHUNK]
        rows = session.execute(
            select(StorageLink.key, StorageLink.row, StorageLink.id, StorageLink.task_id, StorageLink.etag).where(
                StorageLink.storage_id == storage_id, StorageLink.key.in_(chunk)
            )
        )
        out.update({(key, row): (link_id, task_id, etag) for key, row, link_id, task_id, etag in rows})
    return out


def insert_links(session: Session, rows: list[tuple[int, int, str, str, int]]) -> None:
    """Insert (storage_id, task_id, key, etag, row) tuples through the bulk path (COPY on PostgreSQL).

    The caller holds the project lock (on SQLite the database write lock), as id allocation needs.
    """
    if not rows:
        return
    table = BulkTable(session, StorageLink.__table__, LINK_COLUMNS, utcnow())
    ids = table.allocate_ids(len(rows))
    if table.dialect == "postgresql":
        table.copy_lines(
            [
                b"%d\t%d\t%d\t%b\t%b\t%d" % (i, sid, tid, copy_escape(key.encode()), copy_escape(etag.encode()), row)
                for i, (sid, tid, key, etag, row) in zip(ids, rows, strict=True)
            ]
        )
    else:
        table.insert_sqlite([(i, *values) for i, values in zip(ids, rows, strict=True)])


def update_link_etags(session: Session, updates: list[dict[str, Any]]) -> None:
    """updates: [{"id": link id, "etag": new etag}]"""
    if updates:
        session.execute(update(StorageLink), updates)


def link_for_task(session: Session, task_id: int) -> StorageLink | None:
    return session.scalars(select(StorageLink).where(StorageLink.task_id == task_id)).first()


# -- export ----------------------------------------------------------------------------------


def annotated_task_ids(session: Session, project_id: int, after_id: int, limit: int) -> list[int]:
    """Ids of tasks with at least one annotation, in id order, after `after_id` (keyset paging)."""
    query = (
        select(Task.id)
        .where(Task.project_id == project_id, Task.id > after_id)
        .where(select(Annotation.id).where(Annotation.task_id == Task.id).exists())
        .order_by(Task.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def tasks_with_annotations(session: Session, task_ids: list[int]) -> Iterator[tuple[Task, list[Annotation]]]:
    tasks = {t.id: t for t in session.scalars(select(Task).where(Task.id.in_(task_ids)))}
    by_task: dict[int, list[Annotation]] = {tid: [] for tid in tasks}
    for ann in session.scalars(select(Annotation).where(Annotation.task_id.in_(task_ids)).order_by(Annotation.id)):
        by_task.setdefault(ann.task_id, []).append(ann)
    for tid in task_ids:
        if tid in tasks:
            yield tasks[tid], by_task.get(tid, [])


def upsert_export_link(session: Session, storage_id: int, task_id: int, key: str) -> None:
    # One statement, not read-then-write: two export jobs may write the same task's object at once.
    make = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = make(ExportLink).values(storage_id=storage_id, task_id=task_id, key=key)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["storage_id", "task_id"], set_={"key": stmt.excluded.key, "updated_at": utcnow()}
        )
    )


def delete_export_link(session: Session, storage_id: int, task_id: int) -> None:
    session.execute(delete(ExportLink).where(ExportLink.storage_id == storage_id, ExportLink.task_id == task_id))
