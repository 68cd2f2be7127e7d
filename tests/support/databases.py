"""Throwaway databases for tests: a temporary SQLite file or a fresh PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Engine, inspect, text

from tests.support.services import POSTGRES_URL


def _admin_dsn() -> str:
    return POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")


def create_postgres_database(prefix: str = "kl_test") -> str:
    """Create an empty database and return its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_URL.rpartition("/")
    return f"{base}/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rpartition("/")[2]
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'kubelabel.db'}"


def truncate_all(engine: Engine) -> None:
    """Empty every table but alembic's, restarting id sequences."""
    tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            conn.execute(text("PRAGMA foreign_keys=OFF"))
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
            conn.execute(text("PRAGMA foreign_keys=ON"))


@contextmanager
def throwaway(backend: str, directory: Path, prefix: str = "kl_test") -> Iterator[str]:
    """The URL of a new empty database: a SQLite file in `directory`, or a PostgreSQL database
    (the test is skipped without PostgreSQL on a user's machine; dropped afterwards)."""
    if backend == "sqlite":
        yield sqlite_url(directory)
        return
    from tests.support.services import require_port

    require_port("PostgreSQL", "127.0.0.1", 5432)
    url = create_postgres_database(prefix)
    try:
        yield url
    finally:
        drop_postgres_database(url)
