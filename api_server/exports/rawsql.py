"""Export reads through the DBAPI cursor: the database builds the JSON, Python only joins text.

For the JSON formats each task (with its annotations and predictions nested) is built by
the database itself (json_build_object on PostgreSQL, json_object in SQLite), so a task
costs Python one string join instead of a parse/serialise round. The other formats get
plain tuples (task id and data text; annotations with ISO timestamps) without ORM rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from api_server.common import ls_json
from api_server.exports.source import Batch, Selection, view_id_pages

BATCH = 5000


class TaskRow(NamedTuple):
    id: int
    data: str


class AnnotationRow(NamedTuple):
    task_id: int
    id: int
    completed_by_id: int | None
    result: str
    was_cancelled: bool
    created_at: str | None
    updated_at: str | None
    lead_time: float | None


class Dialect:
    def __init__(self, name: str) -> None:
        self.pg = name == "postgresql"
        self.param = "%s" if self.pg else "?"

    def ts(self, column: str) -> str:
        if self.pg:
            return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
        # SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) in SQLite.
        return f"(replace({column}, ' ', 'T') || 'Z')"

    def obj(self, pairs: list[tuple[str, str]]) -> str:
        fn = "json_build_object" if self.pg else "json_object"
        args = ", ".join(f"'{k}', {v}" for k, v in pairs)
        return f"{fn}({args})"

    def doc(self, column: str) -> str:
        # Stored JSON embedded as JSON (jsonb on PostgreSQL; text to be re-read as JSON in SQLite).
        return column if self.pg else f"json({column})"

    def finite(self, column: str) -> str:
        # A stored Infinity or NaN exports as null: SQLite would write `Inf` (not JSON), PostgreSQL "Infinity".
        return f"CASE WHEN abs({column}) <= 1.7976931348623157e308 THEN {column} END"

    def boolean(self, column: str) -> str:
        # json() of a constant is computed once per statement, not per row.
        return column if self.pg else f"CASE WHEN {column} THEN json('true') ELSE json('false') END"

    def array(self, inner: str, table: str, alias: str) -> str:
        if self.pg:
            return (
                f"(SELECT coalesce(json_agg({inner} ORDER BY {alias}.id), '[]'::json) "
                f"FROM {table} {alias} WHERE {alias}.task_id = t.id)"
            )
        return (
            f"(SELECT json_group_array(json(o)) FROM (SELECT {inner} AS o FROM {table} {alias} "
            f"WHERE {alias}.task_id = t.id ORDER BY {alias}.id))"
        )

    def when(self, condition: str, array: str) -> str:
        empty = "'[]'::json" if self.pg else "json_array()"
        return f"CASE WHEN {condition} THEN {array} ELSE {empty} END"

    def text(self, sql: str) -> str:
        return f"({sql})::text" if self.pg else sql


def _value(d: Dialect, kind: str, column: str) -> str:
    """An SQL expression giving a column's value for json_build_object / json_object."""
    if kind == "doc":
        return d.doc(column)
    if kind == "ts":
        return d.ts(column)
    if kind == "bool":
        return d.boolean(column)
    if kind == "float":
        return d.finite(column)
    return column


def _annotation_fields(d: Dialect) -> list[tuple[str, str, str]]:
    """(key, kind, expression) of an exported annotation, from common.ls_json; derived fields by its rules."""
    derived = {
        "prediction": ("doc", "'{}'::jsonb" if d.pg else "'{}'"),
        "result_count": (  # 0 for a stored non-array, as ls_json.result_count
            "int",
            "CASE WHEN jsonb_typeof(a.result) = 'array' THEN jsonb_array_length(a.result) ELSE 0 END"
            if d.pg
            else "json_array_length(a.result)",
        ),
        "state": ("str", ls_json.annotation_state_sql("a")),
    }
    out = []
    for f in ls_json.fields_of(ls_json.ANNOTATION, ls_json.EXPORT):
        # A KeyError here: the table gives the export a derived field without its SQL rule.
        out.append((f.key, *derived.pop(f.key)) if f.column is None else (f.key, f.kind, f"a.{f.column}"))
    if derived:
        raise LookupError(f"SQL rules for fields the export does not write: {sorted(derived)}")
    return out


def _annotation_json(d: Dialect) -> str:
    """SQLite: one annotation as a JSON object (json_object)."""
    return d.obj([(key, _value(d, kind, expr)) for key, kind, expr in _annotation_fields(d)])


def _annotations_text_pg(d: Dialect) -> str:
    """PostgreSQL: a task's annotations as JSON text, concatenated as task_json_sql does the task."""
    parts = [f"""'"{key}":' || {_json_text(d, kind, expr)}""" for key, kind, expr in _annotation_fields(d)]
    one = "'{' || " + " || ',' || ".join(parts) + " || '}'"
    return (
        f"(SELECT coalesce('[' || string_agg({one}, ',' ORDER BY a.id) || ']', '[]') "
        "FROM annotations a WHERE a.task_id = t.id)"
    )


def _prediction_json(d: Dialect) -> str:
    return d.obj(
        [
            ("id", "p.id"),
            ("result", d.doc("p.result")),
            ("score", d.finite("p.score")),
            ("model_version", "p.model_version"),
            ("task", "p.task_id"),
            ("project", "p.project_id"),
            ("ml_backend", "p.ml_backend_id"),
            ("created_at", d.ts("p.created_at")),
            ("updated_at", d.ts("p.updated_at")),
        ]
    )


# Top-level task fields: (key, kind, column), from common.ls_json. Kinds say how a value becomes JSON text.
TASK_FIELDS = tuple((f.key, f.kind, f"t.{f.column}") for f in ls_json.fields_of(ls_json.TASK, ls_json.EXPORT))
NESTED_KEYS = ls_json.keys_of(ls_json.TASK_NESTED, ls_json.EXPORT)


def _json_text(d: Dialect, kind: str, column: str) -> str:
    """An SQL expression giving the JSON text of a column (null included), without building JSON objects.

    Both dialects are covered; task_json_sql uses it for PostgreSQL only (see there), tasks and annotations.
    """
    if kind == "doc":
        # Stored JSON text (jsonb's text form on PostgreSQL), embedded as it is.
        return f"coalesce({column}::text, 'null')" if d.pg else f"coalesce({column}, 'null')"
    if kind == "ts":
        return f"""coalesce('"' || {d.ts(column)} || '"', 'null')"""
    if kind == "bool":
        return f"CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' ELSE 'null' END"
    if kind == "str":
        return f"coalesce(to_json({column})::text, 'null')" if d.pg else f"coalesce(json_quote({column}), 'null')"
    if kind == "float":
        column = d.finite(column)
    return f"coalesce({column}::text, 'null')" if d.pg else f"coalesce(CAST({column} AS TEXT), 'null')"


def task_json_sql(d: Dialect) -> str:
    """One task as Label Studio's export JSON text (the same fields as tasks.serialize.full_task_dict).

    On PostgreSQL the text of the task and of its annotations is concatenated, not built as JSON
    objects: json_build_object costs several times more per row, and stored JSON is embedded
    without being parsed again.
    Results are nested only for tasks whose counters say they have some, so most tasks of a
    big export cost no lookup at all.
    """
    annotated = "t.total_annotations + t.cancelled_annotations > 0"
    predictions = d.when("t.total_predictions > 0", d.array(_prediction_json(d), "predictions", "p"))
    if not d.pg:
        # SQLite's json_object is cheaper than its string concatenation (measured).
        annotations = d.when(annotated, d.array(_annotation_json(d), "annotations", "a"))
        nested = {"annotations": annotations, "predictions": predictions, "drafts": "json_array()"}
        pairs = [(key, _value(d, kind, column)) for key, kind, column in TASK_FIELDS]
        pairs += [(key, nested[key]) for key in NESTED_KEYS]
        return d.obj(pairs)
    nested = {
        "annotations": f"CASE WHEN {annotated} THEN {_annotations_text_pg(d)} ELSE '[]' END",
        "predictions": d.text(predictions),
        "drafts": "'[]'",
    }
    parts = [f"""'"{key}":' || {_json_text(d, kind, column)}""" for key, kind, column in TASK_FIELDS]
    parts += [f"""'"{key}":' || {nested[key]}""" for key in NESTED_KEYS]
    return "'{' || " + " || ',' || ".join(parts) + " || '}'"


def _where(d: Dialect, selection: Selection, ids: list[int] | None) -> tuple[str, list[Any]]:
    where = f"t.project_id = {d.param}"
    params: list[Any] = [selection.project_id]
    if selection.annotated_only:
        where += " AND t.total_annotations + t.cancelled_annotations > 0"
    if ids is not None:
        where += f" AND t.id IN ({', '.join(d.param for _ in ids)})"
        params.extend(ids)
    return where, params


def _pages(session: Session, selection: Selection, columns: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
    """Keyset pages of `SELECT t.id, <columns>`, ordered by id, through the raw DBAPI cursor."""
    d = Dialect(session.get_bind().dialect.name)
    driver = session.connection().connection.driver_connection
    assert driver is not None  # an open session's connection always has its DBAPI connection
    if selection.where is not None:
        chunks: Iterator[list[int] | None] = view_id_pages(session, selection, size)
    elif selection.ids is not None:
        wanted = sorted(set(selection.ids))
        chunks = (wanted[i : i + size] for i in range(0, len(wanted), size))
    else:
        chunks = iter([None])
    for chunk in chunks:
        where, params = _where(d, selection, chunk)
        sql = f"SELECT t.id, {columns} FROM tasks t WHERE {where} AND t.id > {d.param} ORDER BY t.id LIMIT {size}"
        last = 0
        while True:
            cursor = driver.cursor()
            try:
                cursor.execute(sql, (*params, last))
                rows = cursor.fetchall()
            finally:
                cursor.close()
            if not rows:
                break
            yield rows
            last = rows[-1][0]
            if len(rows) < size:
                break


def task_json_pages(session: Session, selection: Selection, size: int = BATCH) -> Iterator[list[str]]:
    d = Dialect(session.get_bind().dialect.name)
    for rows in _pages(session, selection, task_json_sql(d), size):
        yield [r[1] for r in rows]


def batches(session: Session, selection: Selection, size: int = BATCH) -> Iterator[Batch]:
    """Tasks as (id, data text) with their annotations; predictions are not read."""
    d = Dialect(session.get_bind().dialect.name)
    driver = session.connection().connection.driver_connection
    assert driver is not None
    ann_sql = (
        f"SELECT a.task_id, a.id, a.completed_by_id, {d.text('a.result') if d.pg else 'a.result'}, a.was_cancelled, "
        f"{d.ts('a.created_at')}, {d.ts('a.updated_at')}, {d.finite('a.lead_time')} FROM annotations a "
        f"WHERE a.project_id = {d.param} AND a.task_id >= {d.param} AND a.task_id <= {d.param} "
        "ORDER BY a.task_id, a.id"
    )
    for rows in _pages(session, selection, d.text("t.data") if d.pg else "t.data", size):
        tasks = rows  # (id, data text) tuples: shaped like TaskRow, without building one per task
        annotations: dict[int, list[Any]] = defaultdict(list)
        if rows:
            cursor = driver.cursor()
            try:
                cursor.execute(ann_sql, (selection.project_id, rows[0][0], rows[-1][0]))
                for a in cursor.fetchall():
                    annotations[a[0]].append(AnnotationRow(a[0], a[1], a[2], a[3], bool(a[4]), a[5], a[6], a[7]))
            finally:
                cursor.close()
        yield Batch(tasks, annotations, {})
