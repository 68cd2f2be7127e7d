"""Domain events (Label Studio's webhook actions): published into an outbox, fanned out off the request path.

Services call `publish()` inside their transaction; it writes one `event_outbox` row there, so an
event exists exactly when the change it describes was committed, and the request pays one INSERT,
not the subscribers' work. The labeling loop's PostgreSQL function writes the same rows itself
(migration 0008). `fan_out()`, run by the job runner's event thread (in the API process or in
`kubelabel worker`), hands each row to the subscribers (webhooks, ML training triggers, export
storages), registered with `subscribe()` by api_server/wiring.py, and deletes it in
the same transaction as what they wrote: every event is fanned out once.

Fan-outs run one at a time (a PostgreSQL advisory lock; SQLite's write lock), in outbox order, so
what subscribers write for one task (webhook deliveries) is ordered as the events were.

Objects are stored as JSON; ORM rows as `{"$row": <table>, "id": ..., "values": {column: value}}`,
which the fan-out turns back into (detached) rows as they were when the event happened, even when
they changed or were deleted since.

A subscriber may also make a whole batch's writes at once (`prepare`): the webhooks write a
batch's deliveries in one statement, built by PostgreSQL from the stored rows when it can, and on
SQLite made before the fan-out takes the write lock, which is then held for the writes alone.

Most projects have no webhook, model or export storage, and annotations are published on
every submission: a subscriber may name the actions it handles and a `listeners` query (bind
parameters `project_id` and, when it tells actions apart, `action`) that finds a row when it
may have someone to tell. One statement asks all of those at once; an event nobody listens for
is not written, and only subscribers with listeners run. A listeners query may find a row for
an action nobody hears (the subscriber's `hears` decides at fan-out), never the reverse.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    BindParameter,
    ColumnElement,
    DateTime,
    Engine,
    Select,
    SQLColumnExpression,
    String,
    any_,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy import event as sa_event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.visitors import replacement_traverse

from api_server.db.base import Base, UTCDateTime, utcnow
from api_server.db.models import EventOutbox, Task
from api_server.db.writer import SQLITE_WRITER

log = logging.getLogger(__name__)

Subscriber = Callable[[Session, int, str, dict[str, Any]], None]
# Loads referenced objects of one kind in bulk: ids -> objects (missing ids are left out).
Resolver = Callable[[Session, list[int]], dict[int, Any]]

ROW = "$row"
FAN_OUT_BATCH = 500
# SQLite holds its one write lock while a batch's deliveries are written: smaller batches let
# submissions in (but one step every KUBELABEL_EVENTS_GATHER_SECONDS, 0.25 s, must take what a busy
# project publishes meanwhile: 50 a step fell behind a team's 100 annotations/s, with their
# TASK_COMPLETED events).
FAN_OUT_BATCH_SQLITE = 200
_LOCK_KEY = 0x6B6C6576  # pg advisory lock: one fan-out at a time keeps the outbox's order
_WROTE = "kubelabel.events.wrote"
_FINISH = "kubelabel.events.finish"


# Whether a subscriber acts on `action` in the project (asked before an event is decoded for it).
Hears = Callable[[Session, int, str], bool]
# Makes what a subscriber writes for a whole batch of outbox rows (id, project_id, action, objects
# as stored), reading only, and returns its writer (called in the fan-out's transaction; the
# subscriber is then not called per event for this batch), or None to be called per event. On
# SQLite it runs before the write lock is taken: the lock is held for the writes alone.
Prepare = Callable[[Session, list[Any]], Callable[[Session], None] | None]


@dataclass(frozen=True, eq=False)
class _Subscription:
    handler: Subscriber
    actions: frozenset[str] | None
    listeners: Select[*tuple[Any, ...]] | None
    hears: Hears | None = None
    prepare: Prepare | None = None


_subscriptions: list[_Subscription] = []
_resolvers: dict[str, Resolver] = {}
_snapshot_resolvers: dict[str, Callable[[dict[str, Any]], Any]] = {}
_wakers: weakref.WeakKeyDictionary[Engine, Callable[[], None]] = weakref.WeakKeyDictionary()


def subscribe(
    subscriber: Subscriber,
    *,
    actions: Iterable[str] | None = None,
    listeners: Select[*tuple[Any, ...]] | None = None,
    hears: Hears | None = None,
    prepare: Prepare | None = None,
) -> Subscriber:
    if all(s.handler is not subscriber for s in _subscriptions):
        wanted = frozenset(actions) if actions is not None else None
        _subscriptions.append(_Subscription(subscriber, wanted, listeners, hears, prepare))
    return subscriber


def unsubscribe(subscriber: Subscriber) -> None:
    _subscriptions[:] = [s for s in _subscriptions if s.handler is not subscriber]


def resolver(kind: str, load: Resolver, snapshot: Callable[[dict[str, Any]], Any] | None = None) -> None:
    """How the fan-out reads `{"$row": kind, ...}` that are not a table's rows: by id, or from stored values."""
    _resolvers[kind] = load
    if snapshot is not None:
        _snapshot_resolvers[kind] = snapshot


def _interested(*actions: str) -> list[_Subscription]:
    return [s for s in list(_subscriptions) if s.actions is None or not s.actions.isdisjoint(actions)]


@cache
def _presence(queries: tuple[Select[*tuple[Any, ...]], ...]) -> Select[*tuple[Any, ...]]:
    return select(*(exists(q) for q in queries))


def action_literal(action: str) -> ColumnElement[str]:
    """`action` written into a statement as a literal (compiled once, run as plain SQL)."""
    if not action.replace("_", "").isalpha():  # names are UPPER_CASE words: nothing to quote
        raise ValueError(f"not an action name: {action!r}")
    return literal_column(f"'{action}'", String)


def bound(
    query: Select[*tuple[Any, ...]], action: str, project_id: SQLColumnExpression[Any]
) -> Select[*tuple[Any, ...]]:
    """A listeners query (binds `project_id`, `action`) for `action` in the project `project_id` (a column)."""
    values = {"project_id": project_id, "action": action_literal(action)}

    def to_column(element: Any, **_: Any) -> Any:
        return values.get(element.key) if isinstance(element, BindParameter) else None

    # The traversal returns a copy of the Select (typed only as something traversible).
    return cast(Select[*tuple[Any, ...]], replacement_traverse(query, {}, to_column))


def any_listener(
    action: str, project_id: SQLColumnExpression[Any], besides: Subscriber | None = None
) -> ColumnElement[bool]:
    """SQL that is true when publishing `action` in the project `project_id` (a column) runs a subscriber
    (other than `besides`).

    For a statement that decides by itself which events to write (the labeling loop's
    PostgreSQL function writes an outbox row only for an action this finds heard).
    """
    interested = [s for s in _interested(action) if s.handler is not besides]
    if any(s.listeners is None for s in interested):
        return true()
    queries = [bound(s.listeners, action, project_id) for s in interested if s.listeners is not None]
    return or_(false(), *(exists(q) for q in queries))


def _listening(session: Session, project_id: int, action: str) -> list[_Subscription]:
    """The subscribers that would run for `action` in the project now (one statement asks them all)."""
    interested = _interested(action)
    checked = [s for s in interested if s.listeners is not None]
    present: set[int] = set()
    if checked:
        params = {"project_id": project_id, "action": action}
        # On the session's connection: asked by every publish, and the ORM's execute took twice as long.
        found = session.connection().execute(_presence(tuple(s.listeners for s in checked)), params).one()
        present = {id(s) for s, yes in zip(checked, found, strict=True) if yes}
    return [s for s in interested if s.listeners is None or id(s) in present]


def publish(session: Session, project_id: int, action: str, **objects: Any) -> None:
    """Record that `action` happened in `project_id` (objects: ORM rows, ids, JSON), in the caller's transaction."""
    if not _listening(session, project_id, action):
        return
    row = {
        "project_id": project_id,
        "action": action,
        "objects": _encode(objects),
        "created_at": utcnow(),
        "task_id": task_of(objects),
    }
    # Through the connection, not the ORM's unit of work: a submission's flush took twice as long with it.
    session.connection().execute(_INSERT_EVENT, row)
    session.info[_WROTE] = True


_INSERT_EVENT = insert(EventOutbox.__table__)


def task_of(objects: dict[str, Any]) -> int | None:
    """The one task an event is about, if any: the order key of what subscribers send for it.

    Its `task` (a row, its JSON or its id), else its annotation's task; as published or as decoded."""
    task = objects.get("task")
    if isinstance(task, Task):
        return task.id
    if isinstance(task, dict) and isinstance(task.get("id"), int):
        return int(task["id"])
    if isinstance(task, int) and not isinstance(task, bool):
        return task
    annotation = objects.get("annotation")
    if isinstance(annotation, dict):
        found = annotation.get("task")
    else:  # a public form not yet encoded (pydantic)
        found = getattr(annotation, "task", None) if hasattr(annotation, "model_dump") else None
    return found if isinstance(found, int) and not isinstance(found, bool) else None


# --- encoding --------------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, Base):
        values = {c.key: _encode(getattr(value, c.key)) for c in sa_inspect(value).mapper.column_attrs}
        return {ROW: value.__table__.name, "id": value.id, "values": values}  # type: ignore[attr-defined]  # every model has an id; Base declares none
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_encode(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


def _refs(value: Any, found: dict[str, set[int]]) -> None:
    if isinstance(value, dict):
        if ROW in value:
            if not isinstance(value.get("values"), dict):
                found.setdefault(value[ROW], set()).add(int(value["id"]))
            return
        for v in value.values():
            _refs(v, found)
    elif isinstance(value, list):
        for v in value:
            _refs(v, found)


@cache
def _tables() -> dict[str, type[Any]]:
    return {m.class_.__table__.name: m.class_ for m in Base.registry.mappers}


def _load(session: Session, refs: dict[str, set[int]]) -> dict[str, dict[int, Any]]:
    """Rows referenced without their values (none written today), loaded as they are now."""
    loaded: dict[str, dict[int, Any]] = {}
    for kind, ids in refs.items():
        if kind in _resolvers:
            loaded[kind] = _resolvers[kind](session, sorted(ids))
        elif kind in _tables():
            model = _tables()[kind]
            loaded[kind] = {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}
    return loaded


def as_row(model: type[Any], values: dict[str, Any]) -> Any:
    """A detached row of `model` from the values `publish` stored (timestamps parsed back).

    Built as the ORM builds a loaded row (values straight into the instance's dict, no attribute
    events): a fan-out makes thousands a second, and the constructor cost ten times more. The row is
    a snapshot to read, never to add to a session."""
    keys, stamps = _columns(model)
    row = sa_inspect(model).class_manager.new_instance()
    row.__dict__.update(
        (key, datetime.fromisoformat(value) if key in stamps and isinstance(value, str) else value)
        for key, value in values.items()
        if key in keys
    )
    return row


_COLUMNS: dict[type[Any], tuple[frozenset[str], frozenset[str]]] = {}


def _columns(model: type[Any]) -> tuple[frozenset[str], frozenset[str]]:
    """A model's column keys, and those of its timestamp columns (read once per model)."""
    if model not in _COLUMNS:
        columns = list(sa_inspect(model).mapper.column_attrs)
        stamps = {c.key for c in columns if isinstance(c.columns[0].type, DateTime | UTCDateTime)}
        _COLUMNS[model] = (frozenset(c.key for c in columns), frozenset(stamps))
    return _COLUMNS[model]


def _decode(value: Any, loaded: dict[str, dict[int, Any]]) -> Any:
    if isinstance(value, dict):
        if ROW in value:
            kind, values = value[ROW], value.get("values")
            if isinstance(values, dict):
                if kind in _snapshot_resolvers:
                    return _snapshot_resolvers[kind](values)
                if kind in _tables():
                    return as_row(_tables()[kind], values)
            return loaded.get(kind, {}).get(int(value["id"]), {"id": value["id"]})
        return {k: _decode(v, loaded) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, loaded) for v in value]
    return value


# --- fan-out ---------------------------------------------------------------------------------------


def fan_out(session_factory: sessionmaker[Session], limit: int | None = None, *, probe: bool = True) -> int:
    """Hand the oldest outbox rows to their subscribers; returns how many were fanned out (0: none, or busy).

    `probe=False` (the last fan-out found events: more are likely) skips the read that keeps idle
    calls from taking SQLite's write lock."""
    with session_factory() as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
        if probe:
            # A read first: most calls find nothing, and must not take SQLite's write lock for that.
            waiting = session.scalar(select(EventOutbox.id).limit(1))
            session.commit()
            if waiting is None:
                return 0
        if sqlite:
            # What subscribers can make ahead is made before the lock: submissions wait only for the writes.
            rows = _oldest(session, limit or FAN_OUT_BATCH_SQLITE)
            ahead = (rows, _prepare(session, rows)) if rows else None
            session.commit()
            with SQLITE_WRITER:
                return _fan_out(session_factory, session, True, limit or FAN_OUT_BATCH_SQLITE, ahead)
        return _fan_out(session_factory, session, False, limit or FAN_OUT_BATCH)


def _fan_out(
    session_factory: sessionmaker[Session],
    session: Session,
    sqlite: bool,
    limit: int,
    ahead: tuple[list[OutboxRow], dict[int, Callable[[Session], None]]] | None = None,
) -> int:
    if not _begin(session, sqlite):
        return 0
    prepared = None
    if ahead is not None and _still_waiting(session, [r.id for r in ahead[0]]):
        rows, prepared = ahead
    else:  # (SQLite: another process fanned some of them out meanwhile: read again)
        rows = _oldest(session, limit)
    if not rows:
        session.commit()
        return 0
    try:
        _run(session, rows, prepared)
    except Exception:
        session.rollback()
        log.exception("fanning out %s event(s) failed; fanning them out one at a time", len(rows))
        return _one_by_one(session_factory, [r.id for r in rows])
    session.commit()
    return len(rows)


def _begin(session: Session, sqlite: bool) -> bool:
    """Start the fan-out's transaction as the only fan-out; False when another one runs."""
    if sqlite:
        # A read that later writes fails on SQLite when a writer came in between: take the lock first.
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        return True
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK_KEY}))


_UNREAD: Any = object()


class OutboxRow:
    """An outbox row as subscribers get it. Read lazily: its objects, most of the row's bytes, are
    read and decoded for the whole batch when a subscriber first asks for them: a batch its
    subscribers write in SQL alone (webhooks/bulk.py) is never decoded in Python."""

    __slots__ = ("id", "project_id", "action", "_objects", "_batch")

    def __init__(self, id: int, project_id: int, action: str, objects: Any = _UNREAD) -> None:  # noqa: A002
        self.id, self.project_id, self.action, self._objects = id, project_id, action, objects
        self._batch: tuple[Session, list[OutboxRow]] | None = None

    @property
    def objects(self) -> Any:
        if self._objects is _UNREAD and self._batch is not None:
            session, batch = self._batch
            sqlite = session.get_bind().dialect.name == "sqlite"
            read = session.connection().execute(_OBJECTS_IN if sqlite else _OBJECTS, {"ids": [r.id for r in batch]})
            found: dict[int, Any] = {row_id: objects for row_id, objects in read}
            for r in batch:
                r._objects = found[r.id]
        return self._objects


# Plain rows through the connection (Core), not ORM objects: a fan-out reads thousands a second.
_OUTBOX = select(EventOutbox.id, EventOutbox.project_id, EventOutbox.action, EventOutbox.objects)
_HEADS = select(EventOutbox.id, EventOutbox.project_id, EventOutbox.action)
_IDS = EventOutbox.__table__.c.id.in_(bindparam("ids", expanding=True))
# PostgreSQL: the ids as one array, not a parameter each (SQLAlchemy renders every IN anew).
_ANY_ID = EventOutbox.__table__.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger)))
_OBJECTS = select(EventOutbox.id, EventOutbox.objects).where(_ANY_ID)
_OBJECTS_IN = select(EventOutbox.id, EventOutbox.objects).where(_IDS)  # SQLite
_DELETE = delete(EventOutbox.__table__).where(_IDS)
_DELETE_ANY = delete(EventOutbox.__table__).where(_ANY_ID)


def _oldest(session: Session, limit: int) -> list[OutboxRow]:
    """The oldest `limit` outbox rows, their objects read when first asked for."""
    rows = [OutboxRow(*r) for r in session.connection().execute(_HEADS.order_by(EventOutbox.id).limit(limit))]
    for r in rows:
        r._batch = (session, rows)
    return rows


def _still_waiting(session: Session, ids: list[int]) -> bool:
    """Whether the rows read before the lock are all still in the outbox (ids only are read again)."""
    found = session.scalar(select(func.count()).select_from(EventOutbox.__table__).where(_IDS), {"ids": ids})
    return found == len(ids)


def _prepare(session: Session, rows: list[OutboxRow]) -> dict[int, Callable[[Session], None]]:
    """The writers of the subscribers that make a whole batch at once, by subscription."""
    made = {}
    for s in list(_subscriptions):
        if s.prepare is not None and (writer := s.prepare(session, rows)) is not None:
            made[id(s)] = writer
    return made


def _loaded(session: Session, rows: list[OutboxRow]) -> dict[str, dict[int, Any]]:
    """The rows a batch's events reference by id only, read once for the batch."""
    refs: dict[str, set[int]] = {}
    for row in rows:
        _refs(row.objects, refs)
    return _load(session, refs)


def decode(session: Session, rows: list[OutboxRow]) -> list[dict[str, Any]]:
    """The objects of outbox rows as subscribers get them (rows rebuilt as they were), in order."""
    loaded = _loaded(session, rows)
    return [_decode(row.objects, loaded) for row in rows]


def _run(session: Session, rows: list[OutboxRow], prepared: dict[int, Callable[[Session], None]] | None = None) -> None:
    loaded: dict[str, dict[int, Any]] | None = None  # rows referenced by id: read once an event is decoded
    writers = _prepare(session, rows) if prepared is None else prepared
    for write in writers.values():
        write(session)
    done = set(writers)
    listening: dict[tuple[int, str], list[_Subscription]] = {}
    for row in rows:
        key = (row.project_id, row.action)
        if key not in listening:
            listening[key] = [
                s
                for s in _listening(session, row.project_id, row.action)
                if id(s) not in done and (s.hears is None or s.hears(session, row.project_id, row.action))
            ]
        if not listening[key]:
            continue  # an event written because someone listens to the project, not for this action
        if loaded is None:
            loaded = _loaded(session, rows)
        objects = _decode(row.objects, loaded)
        for subscription in listening[key]:
            subscription.handler(session, row.project_id, row.action, objects)
    for finish in session.info.pop(_FINISH, {}).values():
        finish(session)
    ids = [r.id for r in rows]
    postgres = session.get_bind().dialect.name == "postgresql"
    session.connection().execute(_DELETE_ANY if postgres else _DELETE, {"ids": ids})


def at_batch_end(session: Session, key: str, finish: Callable[[Session], None]) -> None:
    """Call `finish(session)` once after every event of this fan-out reached its subscribers, in
    its transaction: a subscriber gathers what it writes per event and writes it in one statement."""
    session.info.setdefault(_FINISH, {}).setdefault(key, finish)


def _one_by_one(session_factory: sessionmaker[Session], ids: list[int]) -> int:
    """After a failed batch: each row in its own transaction; a row that fails alone is logged and dropped."""
    done = 0
    for row_id in ids:
        with session_factory() as session:
            if not _begin(session, session.get_bind().dialect.name == "sqlite"):
                return done
            found = session.connection().execute(_OUTBOX.where(EventOutbox.id == row_id)).first()
            row = OutboxRow(*found) if found is not None else None
            if row is None:
                session.commit()
                continue
            try:
                _run(session, [row])
            except Exception:
                session.rollback()
                log.exception(
                    "event %s (%s, project %s) could not be fanned out: dropped", row_id, row.action, row.project_id
                )
                with session_factory() as cleanup:
                    cleanup.execute(delete(EventOutbox).where(EventOutbox.id == row_id))
                    cleanup.commit()
            else:
                session.commit()
            done += 1
    return done


# --- wake-ups ----------------------------------------------------------------------------------------


def on_commit(engine: Engine, wake: Callable[[], None]) -> None:
    """Call `wake` after each commit on `engine` that published an event (the runner's event thread)."""
    _wakers[engine] = wake


def wake_after_commit(session: Session) -> None:
    """Wake the fan-out and the delivery engine after this session commits (work written without publish)."""
    session.info[_WROTE] = True


def forget(engine: Engine) -> None:
    _wakers.pop(engine, None)


def wake(engine: Engine) -> None:
    """Events were written outside a session (the labeling loop's function): wake the fan-out."""
    waker = _wakers.get(engine)
    if waker is not None:
        waker()


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if not session.info.pop(_WROTE, False):
        return
    try:
        bind = session.get_bind()
    except Exception:
        return
    wake(bind if isinstance(bind, Engine) else bind.engine)


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_WROTE, None)
