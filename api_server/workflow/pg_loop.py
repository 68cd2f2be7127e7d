"""The labeling loop on PostgreSQL: /next and a submission in one database call each.

Annotators spend their day in two requests, GET /next and POST an annotation. Through the
services each is ten-odd statements, and on PostgreSQL most of a request's time went to
SQLAlchemy, the thread pool and one network round trip per statement. Here each runs as a
database function (`kubelabel_next_task`, `kubelabel_submit_checked`: versioned SQL files in
api_server/workflow/sql/, installed by the migrations) on an async connection pool, from the event loop, so it costs one
round trip. A submission is validated in Python against the rules this process last saw for
its project (label config, skip and empty-annotation settings), and the function writes only
if those are still the project's; otherwise it answers with the current ones and the
submission is checked again (one more round trip, after a config change or for a task this
process did not hand out).

The services stay the reference and handle everything else: SQLite, projects that hand out
the caller's own skips again (REQUEUE_FOR_ME), submissions on behalf of another user, and
whatever a function refuses (an illegal state move, a task gone). Then a method here returns
None and the endpoint calls the service. Rules that live in Python reach the functions as
parameters: the roles that may label, the state machine's moves. A submission someone listens
for (webhooks, ML backends, export storages) stays here: the function writes its events into the
outbox in the same call (kubelabel_submit_checked.v4.sql, api_server/workflow/outbox.py), answers `published`,
and this process's event thread is woken to fan them out; when the webhooks alone hear it, the
statement writes its deliveries itself (see `_submit_checked`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, TypeVar, cast

import psycopg
from fastapi import FastAPI, Request
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import bindparam, case, func, null, select
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from api_server import events
from api_server.annotations import service as annotation_service
from api_server.annotations.schemas import AnnotationCreate, AnnotationPublic, to_public
from api_server.common.errors import ApiError, NotFound
from api_server.common.time import as_utc
from api_server.db.base import utcnow
from api_server.db.models import Annotation, Draft, EventOutbox, Prediction, Task, User
from api_server.settings import Settings
from api_server.users import roles
from api_server.users.roles import Role
from api_server.users.service import acting_role, check_project_role
from api_server.webhooks import bulk
from api_server.webhooks import service as webhook_service
from api_server.webhooks.delivery import WRITTEN
from api_server.workflow import metrics
from api_server.workflow import outbox as _outbox  # noqa: F401  (reads back the events the function writes)
from api_server.workflow.schemas import TaskPayload
from api_server.workflow.service import build_payload
from api_server.workflow.state_machine import TRANSITIONS

T = TypeVar("T")
log = logging.getLogger(__name__)


def text_array(values: Sequence[str]) -> str:
    """A text[] literal, passed as one string and cast in the statement: psycopg dumps a list
    element by element at every call (a twentieth of the server's time in the labeling loop)."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


# Parameters the functions take from the Python rules.
LABELERS = [role.value for role in roles.LABELERS]
MOVES = [f"{source.value}>{target.value}" for source, targets in TRANSITIONS.items() for target in targets]
LABELERS_ARRAY, MOVES_ARRAY = text_array(LABELERS), text_array(MOVES)
# SQLSTATEs the functions raise when they leave a case to the services (nothing written).
HANDED_BACK = {"KL404", "KL409"}
# What a submission publishes: the function writes into the outbox those that anyone hears.
SUBMISSION_EVENTS = ("ANNOTATION_CREATED", "TASK_COMPLETED")
# A project's payload form is made again once this share of its freshness has passed (it is used
# until PROJECT_JSON_SECONDS, or longer when it takes long to make: webhooks.service).
FORM_REMADE_AT = 0.75
TASKS_REMEMBERED = 10_000  # task -> project entries kept for guessing a submission's rules (recent hand-outs)

# Statements with PostgreSQL's own placeholders, run on raw cursors (see `Positional`).
_NEXT = "SELECT * FROM kubelabel_next_task($1, $2, $3, $4::text[], $5, $6, $7::text[])"
# Pre-annotations: the predictions of the project's model version when it names one, else all.
_PREDICTIONS = (
    "SELECT p.* FROM predictions p JOIN projects pr ON pr.id = p.project_id"
    " WHERE p.task_id = $1 AND (pr.model_version = '' OR p.model_version = pr.model_version) ORDER BY p.id"
)
_DRAFTS = "SELECT * FROM drafts WHERE task_id = $1 AND user_id = $2 ORDER BY id"
_NAMED = re.compile(r"%\((\w+)\)s|%%")


@dataclass(frozen=True)
class Positional:
    """A statement written with psycopg's named placeholders, turned into PostgreSQL's `$n` once.

    psycopg converts a statement's placeholders at every call unless it is under 4 KiB (its cache
    takes only those): the submission's, 4.4 KiB, cost a twentieth of the server's time in the
    labeling loop being split by a regular expression again per submission."""

    sql: str
    names: tuple[str, ...]  # the value of `$n` is the (n-1)th name's

    @classmethod
    def of(cls, named: str) -> Positional:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match[1] is None:
                return "%"  # `%%`: a literal percent sign
            if match[1] not in names:
                names.append(match[1])
            return f"${names.index(match[1]) + 1}"

        return cls(_NAMED.sub(number, named), tuple(names))

    def values(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(params[name] for name in self.names)


@lru_cache(maxsize=4)
def _positional(named: str) -> Positional:
    """Keyed by the statement itself, so it follows `_submit_checked` (built again when its cache is cleared)."""
    return Positional.of(named)


class ProjectForms:
    """The projects' payload forms a submission's webhook deliveries need (webhooks.service keeps them).

    A form is made again in the background once FORM_REMADE_AT of its freshness old, or when a submission
    found none or found the project changed since: submissions never wait for one, and meanwhile
    publish their events into the outbox as before.
    """

    def __init__(self, engine: Engine, session_factory: sessionmaker[Session]) -> None:
        self.engine = engine
        self.session_factory = session_factory
        self.making: set[int] = set()

    def get(self, project_id: int | None) -> webhook_service.KeptForm | None:
        return None if project_id is None else webhook_service.kept_project_form(self.engine, project_id)

    def keep(self, project_id: int, used: webhook_service.KeptForm | None, current: bool) -> None:
        """After a submission the webhooks alone hear: make the form again if it is missing, aging or outdated."""
        aging = used is None or used.age >= FORM_REMADE_AT * used.fresh_for
        if project_id in self.making or (current and not aging):
            return
        self.making.add(project_id)
        made = asyncio.get_running_loop().run_in_executor(
            None, webhook_service.make_project_form, self.session_factory, project_id
        )
        made.add_done_callback(lambda done: self._made(project_id, done))

    def _made(self, project_id: int, done: asyncio.Future[None]) -> None:
        self.making.discard(project_id)
        if not done.cancelled() and (error := done.exception()) is not None:
            # Submissions go through the outbox meanwhile; the next one asks again.
            log.warning("the payload form of project %s could not be made: %s", project_id, error)


class PgLoop:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        settings: Settings,
        published: Callable[[], None] = lambda: None,
        forms: ProjectForms | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.published = published  # wakes the fan-out and the delivery engine for what a submission wrote
        self.forms = forms  # None: a submission's deliveries are never written with it
        # What a submission is checked against before its one call: the rules last seen per
        # project, and the project of each task this process handed out. A guess the function
        # finds wrong costs one more round trip (it answers `stale` with the right rules).
        self.rules: dict[int, Rules] = {}
        self.task_projects: dict[int, int] = {}

    async def _rows(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]] | None:
        """The statement's rows (`$n` placeholders), or None when a function handed the case back to the services."""
        async with self.pool.connection() as conn, psycopg.AsyncRawCursor(conn, row_factory=dict_row) as cur:
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
        params = (
            project_id,
            user.id,
            user.role == Role.admin,
            LABELERS_ARRAY,
            utcnow(),
            self.settings.task_lock_ttl_seconds,
        )
        rows = await self._rows(_NEXT, (*params, MOVES_ARRAY))
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
        if len(self.task_projects) >= TASKS_REMEMBERED:
            self.task_projects.clear()
        self.task_projects[task.id] = task.project_id
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
        rules, current = self._guess_rules(task_id), False
        for _ in range(3):  # a guess, then the rules the function answered with (changed meanwhile: once more)
            if rules is not None:
                try:
                    annotation_service.check_content(rules, body)
                except ApiError:
                    if current:
                        raise
                    rules = None  # checked against rules maybe outdated: the function sends the current ones
            project_id = rules.project_id if rules else None
            form = self.forms.get(project_id) if self.forms is not None else None
            row = await self._submit_checked(user, task_id, body, rules, form)
            if row is None:
                return None  # missing: the services answer 404
            status, wanted, current, deliveries = (row.pop(k) for k in ("status", "wanted", "current", "deliveries"))
            if status in ("published", "ok"):
                if deliveries:
                    WRITTEN.labels("submit").inc(deliveries)
                if status == "published" or deliveries:
                    self.published()
                if wanted and project_id is not None and self.forms is not None:
                    self.forms.keep(project_id, form, current)
                return self._submitted(row, user, body)
            if status != "stale":
                self._refused(status, row, user, body)
                return None
            rules, current = Rules.of(row), True
            self.rules[rules.project_id] = rules
        return None

    async def _submit_checked(
        self,
        user: User,
        task_id: int,
        body: AnnotationCreate,
        rules: Rules | None,
        form: webhook_service.KeptForm | None = None,
    ) -> dict[str, Any] | None:
        params = {
            "task_id": task_id,
            "user_id": user.id,
            "admin": user.role == Role.admin,
            "allowed": text_array(annotation_service.roles_admitted(rules, body)) if rules else LABELERS_ARRAY,
            "project_id": rules.project_id if rules else None,
            "rules": rules.fingerprint if rules else None,
            "result": Jsonb(body.result),
            "was_cancelled": body.was_cancelled,
            "ground_truth": body.ground_truth,
            "lead_time": body.lead_time,
            "parent_prediction": body.parent_prediction,
            "parent_annotation": body.parent_annotation,
            "import_id": body.import_id,
            "last_action": annotation_service.last_action(body),
            "draft_created_at": body.draft_created_at,
            "now": utcnow(),
            "moves": MOVES_ARRAY,
            "project_updated": as_utc(form.updated) if form else None,
            "project_form": form.text if form else None,
        }
        statement = _positional(_submit_checked())
        rows = await self._rows(statement.sql, statement.values(params))
        return rows[0] if rows else None

    def _submitted(self, row: dict[str, Any], user: User, body: AnnotationCreate) -> AnnotationPublic:
        answered = ("member_role", "rules", "label_config", "show_skip_button", "enable_empty_annotation", "task_row")
        for column in answered:
            del row[column]
        annotation = Annotation(**row)
        counter = metrics.ANNOTATIONS_SKIPPED if body.was_cancelled else metrics.ANNOTATIONS_SUBMITTED
        counter.labels(str(annotation.project_id)).inc()
        return to_public(annotation, user.username)

    def _refused(self, status: str, row: dict[str, Any] | None, user: User, body: AnnotationCreate) -> None:
        """A refusal names its error here when it is the caller's (a 403); otherwise the services answer."""
        if status == "forbidden" and row is not None:
            project_id = row["project_id"]
            role = check_project_role(acting_role(user, row["member_role"]), project_id, Role.annotator)
            annotation_service.admit(Rules.of(row), role, body)
        return None  # missing (the services answer 404), or no error found

    def _guess_rules(self, task_id: int) -> Rules | None:
        project_id = self.task_projects.get(task_id)
        if project_id is None and len(self.rules) == 1:
            project_id = next(iter(self.rules))  # one project served here, as a provisioned API is
        return self.rules.get(project_id) if project_id is not None else None


@dataclass(frozen=True)
class Rules:
    """A project's submission rules as the function read them (attributes as `admit` reads a project)."""

    project_id: int
    label_config: str
    show_skip_button: bool
    enable_empty_annotation: bool
    fingerprint: str

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Rules:
        return cls(
            row["project_id"],
            row["label_config"],
            row["show_skip_button"],
            row["enable_empty_annotation"],
            row["rules"],
        )


async def _counted(call: str, answering: Awaitable[T | None]) -> T | None:
    try:
        answer = await answering
    except ApiError:  # answered here: 403, 404, 400 ...
        metrics.PG_LOOP_CALLS.labels(call, "database").inc()
        raise
    metrics.PG_LOOP_CALLS.labels(call, "services" if answer is None else "database").inc()
    return answer


@cache
def _submit_checked() -> str:
    """The submission call, with which of its events anyone hears computed in the same statement.

    The function writes those into the outbox with the submission; but when the webhooks alone hear
    it (ANNOTATION_CREATED, and nobody TASK_COMPLETED), the statement writes its deliveries itself,
    from the function's answer (webhooks/bulk.py), with no outbox row to write, fan out and delete.
    Only when the project's payload form is given (`project_form`, made while the project's
    `updated_at` was `project_updated`) and still the project's, and no event of the task waits
    in the outbox: a delivery written now gets an id before those still to come from there, and
    each task's deliveries are sent in id order. Answers the function's row, `wanted` (the
    webhooks alone hear it), `current` (the form given is the project's) and `deliveries` (written).

    The listeners' queries are built with SQLAlchemy from the event subscribers, once (after they
    registered), and run as plain SQL.
    """
    heard = array(
        [case((events.any_listener(a, Task.project_id), events.action_literal(a))) for a in SUBMISSION_EVENTS]
    )
    others = events.any_listener(bulk.ACTION, Task.project_id, besides=webhook_service.on_event)
    listening = select(func.array_remove(heard, null()).label("heard"), others.label("others")).where(
        Task.id == bindparam("task_id")
    )
    listening_sql = str(listening.compile(dialect=pg_psycopg.dialect()))  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect __init__ is unannotated
    return (
        f"WITH l AS ({listening_sql}),"
        f" c AS (SELECT (SELECT heard FROM l) AS heard,"
        f"  (SELECT heard = ARRAY['{bulk.ACTION}'] AND NOT others FROM l) AS wanted,"
        "  EXISTS (SELECT 1 FROM projects p WHERE p.id = %(project_id)s AND p.updated_at = %(project_updated)s)"
        "  AS current),"
        " k AS (SELECT c.*, coalesce(c.wanted AND c.current AND %(project_form)s::text IS NOT NULL"
        f"  AND NOT EXISTS (SELECT 1 FROM {EventOutbox.__tablename__} o WHERE o.task_id = %(task_id)s),"
        "  false) AS direct FROM c),"
        " s AS (SELECT f.* FROM k, kubelabel_submit_checked(%(task_id)s, %(user_id)s, %(admin)s, %(allowed)s::text[],"
        " CASE WHEN k.direct THEN ARRAY[]::text[] ELSE k.heard END, %(project_id)s, %(rules)s, %(result)s,"
        " %(was_cancelled)s, %(ground_truth)s, %(lead_time)s, %(parent_prediction)s, %(parent_annotation)s,"
        " %(import_id)s, %(last_action)s, %(draft_created_at)s, %(now)s, %(moves)s::text[], k.direct) f),"
        f" d AS ({bulk.submitted('s')} RETURNING 1)"
        " SELECT s.*, coalesce(k.wanted, false) AS wanted, k.current, (SELECT count(*) FROM d) AS deliveries"
        " FROM s, k"
    )


# --- wiring -------------------------------------------------------------------------------------


def attach(app: FastAPI, settings: Settings, database_url: str) -> None:
    """Open the loop's pool with the app (PostgreSQL, unless KUBELABEL_PG_FAST_LOOP=false)."""
    app.state.pg_loop = None
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql" or not settings.pg_fast_loop:
        return
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    pool = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=settings.db_pools()[1],
        open=False,
        kwargs={"autocommit": True},
        check=_Freshness().check,
    )

    @app.on_event("startup")
    async def _open() -> None:
        await pool.open()
        forms = ProjectForms(app.state.engine, app.state.session_factory)
        app.state.pg_loop = PgLoop(pool, settings, lambda: events.wake(app.state.engine), forms)

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
