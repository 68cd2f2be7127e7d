"""Engine and session factory for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker


def is_sqlite(engine_or_url: Engine | Connection | str) -> bool:
    # A session's bind is an Engine or a Connection; both reach their Engine as .engine.
    url = engine_or_url if isinstance(engine_or_url, str) else str(engine_or_url.engine.url)
    return url.startswith("sqlite")


def json_dumps(value: Any) -> str:
    """JSON columns' encoder: orjson (several times faster; every task, annotation and event passes
    here), the standard library for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


# orjson reads an integer beyond 64 bits as a float: digits enough for one go to the standard library.
_LONG_NUMBER = re.compile(r"\d{20}")
_LONG_NUMBER_BYTES = re.compile(rb"\d{20}")


def json_loads(data: str | bytes) -> Any:
    long_number = _LONG_NUMBER.search(data) if isinstance(data, str) else _LONG_NUMBER_BYTES.search(data)
    if long_number is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # NaN or Infinity, which the standard library wrote and reads
    return json.loads(data)


def make_engine(url: str, connections: int = 30) -> Engine:
    """An engine; on PostgreSQL it opens at most `connections` (10 kept, the rest while busy)."""
    codec: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": json_loads}
    if is_sqlite(url):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **codec)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets readers run while one writer writes; foreign keys are off by default in SQLite.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # SQLite parses `x REGEXP y` but has no such function: the data-manager filters' regex.
            dbapi_conn.create_function("regexp", 2, _regexp, deterministic=True)

        return engine
    kept = min(10, connections)
    return create_engine(url, pool_size=kept, max_overflow=connections - kept, pool_pre_ping=True, **codec)


@lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regexp(pattern: str | None, value: object) -> bool | None:
    """SQLite's REGEXP (pattern first): a search, as PostgreSQL's `~` does; NULL stays NULL."""
    if pattern is None or value is None:
        return None
    return _pattern(pattern).search(str(value)) is not None


def ping(engine: Engine) -> None:
    """One round trip to the database (readiness); raises the driver's error when it does not answer."""
    with engine.begin() as conn:  # COMMIT, not ROLLBACK: keeps prepared statements
        conn.execute(text("SELECT 1"))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
