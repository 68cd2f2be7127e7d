"""A fan-out's ANNOTATION_CREATED deliveries, built and written by the database in one statement.

The labeling loop's function stores a submission's annotation and task as their rows' values
(api_server/workflow/outbox.py). Under a team's load nearly every event a fan-out reads is one of
these, and decoding each, building its payload in Python and encoding it again was most of what a
webhook cost the server's one interpreter. Here the database turns the stored values back into
rows (`jsonb_populate_record`) and builds the payloads from them, key by key from the same field
table as every other writer of these objects (common.ls_json): the annotation in the API's form
(timestamps ending in `Z`, the author's name), the task in the payloads' (`+00:00`), the project as
the per-event path makes it (passed in). tests/integration/api/test_webhook_bulk.py holds the two
paths to the same deliveries.

Only when every event of the batch that a webhook hears is such an ANNOTATION_CREATED: otherwise
the batch goes the per-event way, so the deliveries' ids keep each task's events in order.

`submitted` builds the same payloads in the labeling loop's own statement, from the function's
answer, for a submission whose deliveries are written with it (no outbox row: workflow/pg_loop.py).
Payloads are built as `json` text, the column's type: the delivery engine sends them as stored.

On SQLite the services write a submission's event (annotations.service): the annotation in the
API's form already, the task as its row's values, every timestamp as the payload writes it
(`+00:00`: UTCDateTime). Its statement copies each value as stored, with SQLite's JSON functions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, literal_column, text
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.orm import Session

from api_server import events
from api_server.annotations.schemas import STORED_AUTHOR, STORED_KIND
from api_server.common import ls_json
from api_server.db.base import UTCDateTime
from api_server.db.models import Annotation, EventOutbox, Task, User, WebhookDelivery
from api_server.db.session import is_sqlite
from api_server.webhooks import repository
from api_server.webhooks.delivery import WRITTEN
from api_server.webhooks.engine import PENDING

ACTION = "ANNOTATION_CREATED"
_TASK_ROW = Task.__tablename__


# The events the statement builds: ANNOTATION_CREATED with its annotation and task as stored rows
# (the labeling loop's function writes them so). SQL, so that a batch of them is never decoded in Python.
_BUILDS = (
    f"o.action = '{ACTION}'"
    " AND (SELECT count(*) FROM jsonb_object_keys(o.objects)) = 2"
    f" AND o.objects -> 'annotation' ->> '{events.ROW}' = '{STORED_KIND}'"
    " AND jsonb_typeof(o.objects -> 'annotation' -> 'values') = 'object'"
    f" AND o.objects -> 'task' ->> '{events.ROW}' = '{_TASK_ROW}'"
    " AND jsonb_typeof(o.objects -> 'task' -> 'values') = 'object'"
)
_ANY_OTHER = text(
    f"SELECT EXISTS (SELECT 1 FROM {EventOutbox.__tablename__} o"
    f" WHERE o.id = ANY(CAST(:ids AS bigint[])) AND ({_BUILDS}) IS NOT TRUE)"
)


# The task's keys in webhook payloads, both databases' statements.
_TASK_FIELDS = ls_json.fields_of(ls_json.TASK, ls_json.WEBHOOK)
# SQLite: the services' form (module docstring). A timestamp written otherwise goes the per-event way.
_BUILDS_SQLITE = (
    f"o.action = '{ACTION}'"
    " AND (SELECT count(*) FROM json_each(o.objects)) = 2"
    " AND json_type(o.objects, '$.annotation') = 'object'"
    f" AND json_type(o.objects, '$.annotation.\"{events.ROW}\"') IS NULL"
    f" AND json_extract(o.objects, '$.task.\"{events.ROW}\"') = '{_TASK_ROW}'"
    " AND json_type(o.objects, '$.task.values') = 'object'"
    + "".join(
        f" AND coalesce(json_extract(o.objects, '$.task.values.{f.column}'), '+00:00') GLOB '*+00:00'"
        for f in _TASK_FIELDS
        if f.kind == "ts"
    )
)
_ANY_OTHER_SQLITE = text(
    f"SELECT EXISTS (SELECT 1 FROM {EventOutbox.__tablename__} o"
    f" WHERE o.id IN (SELECT value FROM json_each(:ids)) AND ({_BUILDS_SQLITE}) IS NOT TRUE)"
)


def builds_all(session: Session, outbox_ids: list[int]) -> bool:
    """Whether the statement builds the events of all these outbox rows."""
    if not outbox_ids:
        return True
    if is_sqlite(session.get_bind()):
        return not session.scalar(_ANY_OTHER_SQLITE, {"ids": orjson.dumps(outbox_ids).decode()})
    return not session.scalar(_ANY_OTHER, {"ids": outbox_ids})


def _iso(column: str, utc: str) -> str:
    """Python's `isoformat()` of a UTC timestamp (microseconds only when there are some), `utc` for +00:00."""
    local = f"({column} AT TIME ZONE 'UTC')"
    micros = f"date_part('microseconds', {column})::bigint % 1000000"
    micros = f"CASE WHEN {micros} <> 0 THEN to_char({local}, '.US') ELSE '' END"
    return f"""to_char({local}, 'YYYY-MM-DD"T"HH24:MI:SS') || {micros} || '{utc}'"""


def _object(pairs: list[tuple[str, str]]) -> str:
    # json, as the payload column stores it (text as built: the engine sends it without a conversion).
    # json_build_object takes at most 100 arguments: the two objects here have under 30 keys.
    return "json_build_object(" + ", ".join(f"'{key}', {value}" for key, value in pairs) + ")"


def _annotation_sql(a: str, username: str) -> str:
    """The annotation's API form (annotations.schemas.to_public_json) from a row `a` of annotations."""
    derived = {
        "state": ls_json.annotation_state_sql(a),
        "created_username": f"coalesce({username}, '')",
        "created_ago": "''",
    }
    pairs = []
    for f in ls_json.fields_of(ls_json.ANNOTATION, ls_json.API):
        if f.column is None:
            pairs.append((f.key, derived.pop(f.key)))  # a KeyError: a derived field without its SQL rule
        elif f.kind == "ts":
            pairs.append((f.key, _iso(f"{a}.{f.column}", "Z")))
        elif f.kind == "float":  # NaN and infinities are null, as orjson writes them
            pairs.append((f.key, f"CASE WHEN abs({a}.{f.column}) <= 1.7976931348623157e308 THEN {a}.{f.column} END"))
        else:
            pairs.append((f.key, f"{a}.{f.column}"))
    if derived:
        raise LookupError(f"SQL rules for fields the API form does not have: {sorted(derived)}")
    return _object(pairs)


def _task_sql(t: str) -> str:
    """The task's payload form (webhooks.payloads.task_dict) from a row `t` of tasks."""
    pairs = []
    for f in _TASK_FIELDS:
        if f.column is None:
            raise LookupError(f"no SQL rule for the task's derived field {f.key!r}")
        pairs.append((f.key, _iso(f"{t}.{f.column}", "+00:00") if f.kind == "ts" else f"{t}.{f.column}"))
    return _object(pairs)


def _payload(action: str, annotation: str, username: str, project: str) -> str:
    """ANNOTATION_CREATED's payload from the annotation's row `annotation`, the task's row `t`, the project's form."""
    return _object(
        [
            ("action", action),
            ("annotation", _annotation_sql(annotation, username)),
            ("task", _task_sql("t")),
            ("project", project),
        ]
    )


_INSERT_INTO = (
    f"INSERT INTO {WebhookDelivery.__tablename__}"
    " (webhook_id, action, payload, task_id, status, attempts, next_attempt_at, created_at)"
)
_PAYLOAD = _payload(
    "o.action",
    "a",
    f"o.objects -> 'annotation' -> 'values' ->> '{STORED_AUTHOR}'",
    "CAST(:projects AS json) -> o.project_id::text",
)
_INSERT = text(
    f"{_INSERT_INTO}"
    f" SELECT h.w, o.action, CASE WHEN h.f THEN {_PAYLOAD} ELSE json_build_object('action', o.action) END,"
    "  t.id, :status, 0, :now, :now"
    " FROM ROWS FROM (jsonb_to_recordset(CAST(:pairs AS jsonb)) AS (e bigint, w integer, f boolean))"
    "  WITH ORDINALITY AS h(e, w, f, n)"
    f" JOIN {EventOutbox.__tablename__} o ON o.id = h.e"
    f" CROSS JOIN LATERAL jsonb_populate_record(NULL::{Annotation.__tablename__},"
    "  o.objects -> 'annotation' -> 'values') AS a"
    f" CROSS JOIN LATERAL jsonb_populate_record(NULL::{Task.__tablename__}, o.objects -> 'task' -> 'values') AS t"
    " ORDER BY h.n"
)


def _sqlite_payload() -> str:
    task = ", ".join(f"'{f.key}', o.objects -> '$.task.values.{f.column}'" for f in _TASK_FIELDS)
    project = """:projects -> ('$."' || o.project_id || '"')"""
    return (
        f"json_object('action', o.action, 'annotation', o.objects -> '$.annotation',"
        f" 'task', json_object({task}), 'project', {project})"
    )


# Pairs as [outbox id, webhook id, send_payload], in the order their deliveries are written.
_INSERT_SQLITE = text(
    f"{_INSERT_INTO}"
    f" SELECT p.value ->> 1, o.action, CASE WHEN p.value ->> 2 THEN {_sqlite_payload()}"
    "  ELSE json_object('action', o.action) END, o.objects ->> '$.task.id', :status, 0, :now, :now"
    f" FROM json_each(:pairs) AS p JOIN {EventOutbox.__tablename__} o ON o.id = p.value ->> 0"
    " ORDER BY p.key"
).bindparams(bindparam("now", type_=UTCDateTime()))


def write(session: Session, pairs: list[tuple[int, int, bool]], projects: dict[int, Any], now: datetime) -> None:
    """One delivery per (outbox id, webhook id, send_payload), in that order; `projects`: the project forms by id."""
    if not pairs:
        return
    sqlite = is_sqlite(session.get_bind())
    params = {
        "pairs": orjson.dumps([[e, w, f] if sqlite else {"e": e, "w": w, "f": f} for e, w, f in pairs]).decode(),
        "projects": orjson.dumps({str(k): v for k, v in projects.items()}).decode(),
        "now": now,
        "status": PENDING,
    }
    session.execute(_INSERT_SQLITE if sqlite else _INSERT, params)
    WRITTEN.labels("sql").inc(len(pairs))


def submitted(answer: str) -> str:
    """The INSERT of a submission's ANNOTATION_CREATED deliveries, one per webhook that takes it, for
    the statement that calls the labeling loop's function (workflow/pg_loop.py), psycopg's style.

    `answer` names the function's answer (a CTE): the annotation's columns, and `task_row`, the
    task's row as the submission left it, given only when the statement asked for it: none, no
    delivery. Parameters: `now` (the submission's time) and `project_form` (the project's payload
    form, JSON). The same payload SQL as the fan-out's statement above.
    """
    a = answer
    hooks = events.bound(repository.TAKING, ACTION, literal_column(f"{a}.project_id"))
    hooks_sql = str(hooks.compile(dialect=pg_psycopg.dialect()))
    username = f"(SELECT u.username FROM {User.__tablename__} u WHERE u.id = {a}.completed_by_id)"
    # psycopg's style: a `%` of the SQL (the payload's modulo) doubled, then the parameter.
    payload = _payload(f"'{ACTION}'", a, username, "CAST(:project_form AS json)").replace("%", "%%")
    payload = payload.replace(":project_form", "%(project_form)s")
    return (
        f"{_INSERT_INTO}"
        f" SELECT h.id, '{ACTION}', CASE WHEN h.send_payload THEN {payload}"
        f"  ELSE json_build_object('action', '{ACTION}') END, {a}.task_id, '{PENDING}', 0, %(now)s, %(now)s"
        f" FROM {a} CROSS JOIN LATERAL (SELECT ({a}.task_row).*) AS t"
        f" CROSS JOIN LATERAL ({hooks_sql}) AS h"
        f" WHERE ({a}.task_row).id IS NOT NULL"
        " ORDER BY h.id"
    )
