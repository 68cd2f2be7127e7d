"""The labeling loop on PostgreSQL: /next and a submission in one database call each.

Annotators spend their day in two requests, GET /next and POST an annotation. Through the
services each is ten-odd statements, and on PostgreSQL most of a request's time went to
SQLAlchemy, the thread pool and one network round trip per statement. Here each runs as a
database function (migration 0002: `kubelabel_next_task`, `kubelabel_submit`) on an async
connection pool, from the event loop, so it costs one round trip (two for a submission: its
checks need the project's label config first).

The services stay the reference and handle everything else: SQLite, projects that hand out
the caller's own skips again (REQUEUE_FOR_ME), submissions on behalf of another user,
projects with webhooks, ML backends or export storages listening (events are published by
the services), and whatever a function refuses (an illegal state move, a task gone). Then a
method here returns None and the endpoint calls the service. Rules that live in Python reach
the functions as parameters: the roles that may label, the state machine's moves.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Awaitable, Mapping, Sequence
from functools import cache
from types import SimpleNamespace
from typing import Any, TypeVar, cast

import psycopg
from fastapi import FastAPI, Request
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import and_, bindparam, select
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.engine import make_url

from api_server import events
from api_server.annotations import service as annotations
from api_server.annotations.schemas import AnnotationCreate, AnnotationPublic, to_public
from api_server.common.errors import ApiError, NotFound
from api_server.db.base import utcnow
from api_server.db.models import Annotation, Draft, Prediction, Project, ProjectMember, Task, User
from api_server.settings import Settings
from api_server.users.roles import Role, at_least
from api_server.users.service import acting_role, check_project_role
from api_server.workflow import metrics
from api_server.workflow.schemas import TaskPayload
from api_server.workflow.service import build_payload
from api_server.workflow.state_machine import TRANSITIONS

T = TypeVar("T")

# Parameters the functions take from the Python rules.
LABELERS = [role.value for role in Role if at_least(role.value, Role.annotator)]
MOVES = [f"{source.value}>{target.value}" for source, targets in TRANSITIONS.items() for target in targets]
# SQLSTATEs the functions raise when they leave a case to the services (nothing written).
HANDED_BACK = {"KL404", "KL409"}

_NEXT = "SELECT * FROM kubelabel_next_task(%s, %s, %s, %s, %s, %s, %s)"
_SUBMIT = "SELECT * FROM kubelabel_submit(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_PREDICTIONS = "SELECT * FROM predictions WHERE task_id = %s ORDER BY id"
_DRAFTS = "SELECT * FROM drafts WHERE task_id = %s AND user_id = %s ORDER BY id"


class PgLoop:
    def __init__(self, pool: AsyncConnectionPool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    async def _rows(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any], conn: psycopg.AsyncConnection[Any] | None = None
    ) -> list[dict[str, Any]] | None:
        """The statement's rows, or None when a function handed the case back to the services."""
        if conn is None:
            async with self.pool.connection() as pooled:
                return await self._rows(sql, params, pooled)
        async with conn.cursor(row_factory=dict_row) as cur:
            try:
                await cur.execute(sql, params)
            except psycopg.OperationalError:
                # The connection broke (the database restarted, or dropped it while it sat in the
                # pool, unpinged: see _Freshness). The pool discards it; the services, on the
                # engine's pre-pinged connections, answer this request.
                return None
            except psycopg.Error as exc:
                # Rolled back, nothing written: the services decide (and name the error).
                if isinstance(exc, psycopg.errors.IntegrityError) or exc.sqlstate in HANDED_BACK:
                    return None
                raise
            return await cur.fetchall()

    async def next_task(self, user: User, project_id: int) -> TaskPayload | None:
        return await _counted("next", self._next_task(user, project_id))

    async def submit(self, user: User, task_id: int, body: AnnotationCreate) -> AnnotationPublic | None:
        return await _counted("submit", self._submit(user, task_id, body))

    async def _next_task(self, user: User, project_id: int) -> TaskPayload | None:
        started = time.perf_counter()
        params = (project_id, user.id, user.role == Role.admin, LABELERS, utcnow(), self.settings.task_lock_ttl_seconds)
        rows = await self._rows(_NEXT, (*params, MOVES))
        if rows is None:
            return None
        if not rows:
            metrics.NEXT_TASK_DURATION.observe(time.perf_counter() - started)
            raise NotFound("no more tasks")
        row = rows[0]
        status, role, fresh = row.pop("status"), row.pop("member_role"), row.pop("fresh")
        if status == "missing":
            raise NotFound(f"project {project_id} does not exist")
        if status == "forbidden":
            check_project_role(acting_role(user, role), project_id, Role.annotator)
        if status != "ok":
            return None
        task = Task(**row)
        # The same rules as the service's payload: predictions only when the task has some, the
        # caller's drafts only when the function found some (`fresh`: none of theirs on it).
        predictions = await self._rows(_PREDICTIONS, (task.id,)) if task.total_predictions else []
        drafts = [] if fresh else await self._rows(_DRAFTS, (task.id, user.id))
        payload = build_payload(
            task,
            user,
            own=(),
            predictions=[Prediction(**r) for r in predictions or ()],
            drafts=[Draft(**r) for r in drafts or ()],
        )
        metrics.NEXT_TASK_DURATION.observe(time.perf_counter() - started)
        return payload

    async def _submit(self, user: User, task_id: int, body: AnnotationCreate) -> AnnotationPublic | None:
        if body.completed_by not in (None, user.id):
            return None  # on behalf of another user: the service checks them
        async with self.pool.connection() as conn:  # one connection for the checks and the write
            return await self._submit_on(conn, user, task_id, body)

    async def _submit_on(
        self, conn: psycopg.AsyncConnection[Any], user: User, task_id: int, body: AnnotationCreate
    ) -> AnnotationPublic | None:
        rows = await self._rows(_gate(), {"task_id": task_id, "user_id": user.id}, conn)
        if not rows:
            return None  # no such task: the service answers 404
        gate = SimpleNamespace(**rows[0])  # attribute access, as `annotations.admit` reads a project
        if gate.listening:
            return None  # someone listens for ANNOTATION_CREATED: the service publishes it
        role = check_project_role(acting_role(user, gate.role), gate.project_id, Role.annotator)
        annotations.admit(gate, role, body)
        params = (
            task_id,
            gate.project_id,
            user.id,
            user.id,
            Jsonb(body.result),
            body.was_cancelled,
            body.ground_truth,
            body.lead_time,
            body.parent_prediction,
            body.parent_annotation,
            body.import_id,
            annotations.last_action(body),
            body.draft_created_at,
            utcnow(),
            MOVES,
        )
        created = await self._rows(_SUBMIT, params, conn)
        if not created:
            return None
        row = Annotation(**created[0])
        counter = metrics.ANNOTATIONS_SKIPPED if body.was_cancelled else metrics.ANNOTATIONS_SUBMITTED
        counter.labels(str(gate.project_id)).inc()
        return to_public(row, user.username)


async def _counted(call: str, answering: Awaitable[T | None]) -> T | None:
    try:
        answer = await answering
    except ApiError:  # answered here: 403, 404, 400 ...
        metrics.PG_LOOP_CALLS.labels(call, "database").inc()
        raise
    metrics.PG_LOOP_CALLS.labels(call, "services" if answer is None else "database").inc()
    return answer


@cache
def _gate() -> str:
    """A submission's checks, in one query: the task's project, its rules, the caller's membership, listeners.

    Built with SQLAlchemy once (after the subscribers registered) and run as plain SQL.
    """
    member = and_(ProjectMember.project_id == Task.project_id, ProjectMember.user_id == bindparam("user_id"))
    stmt = (
        select(
            Task.project_id,
            Project.label_config,
            Project.show_skip_button,
            Project.enable_empty_annotation,
            ProjectMember.role,
            events.any_listener("ANNOTATION_CREATED", Task.project_id).label("listening"),
        )
        .join(Project, Project.id == Task.project_id)
        .outerjoin(ProjectMember, member)
        .where(Task.id == bindparam("task_id"))
    )
    return str(stmt.compile(dialect=pg_psycopg.dialect()))


# --- wiring -------------------------------------------------------------------------------------


def attach(app: FastAPI, settings: Settings, database_url: str) -> None:
    """Open the loop's pool with the app (PostgreSQL, unless KUBELABEL_PG_FAST_LOOP=false)."""
    app.state.pg_loop = None
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql" or not settings.pg_fast_loop:
        return
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    pool = AsyncConnectionPool(
        conninfo, min_size=1, max_size=10, open=False, kwargs={"autocommit": True}, check=_Freshness().check
    )

    @app.on_event("startup")
    async def _open() -> None:
        await pool.open()
        app.state.pg_loop = PgLoop(pool, settings)

    @app.on_event("shutdown")
    async def _close() -> None:
        app.state.pg_loop = None
        await pool.close()


class _Freshness:
    """Ping a pooled connection before use only when it has not been used for a while.

    A ping is a round trip: on every checkout it cost more than a tenth of the loop's work. A
    connection checked out less than `FRESH_SECONDS` ago was just working; one idle longer is
    pinged first, so a connection the database or the network dropped meanwhile is replaced. One
    that broke within the second anyway (a restart under load) fails its statement before
    anything is written, and `PgLoop._rows` hands that request to the services. The time is
    taken at checkout, not on return: a pool `reset` callback would send every return through
    the pool's worker task, an event-loop hop per request.
    """

    FRESH_SECONDS = 1.0

    def __init__(self) -> None:
        self.last_used: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = weakref.WeakKeyDictionary()

    async def check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        now = time.monotonic()
        if now - self.last_used.get(conn, -math.inf) > self.FRESH_SECONDS:
            await AsyncConnectionPool.check_connection(conn)
        self.last_used[conn] = now


def of(request: Request) -> PgLoop | None:
    return cast(PgLoop | None, getattr(request.app.state, "pg_loop", None))
