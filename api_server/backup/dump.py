"""A consistent snapshot of the database, streamed into a backup's parts.

SQLite: `sqlite3.Connection.backup` copies the live database page by page into a temporary
file in one step, under one read transaction (a consistent snapshot; in WAL mode writers go on
meanwhile); the copy is then compressed and uploaded. Never a file copy of a live database,
which can catch a half-written page or miss the WAL.

PostgreSQL: one REPEATABLE READ READ ONLY transaction (one snapshot for every table) reads
each table with `COPY ... TO STDOUT` (text format), block by block into the parts: memory
stays flat whatever the size. pg_dump is not used: the image need not carry a client matching
the server's version, and restore rebuilds the schema from our own migrations at the backup's
revision, so only the rows need to travel.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from api_server.backup.store import BackupError, Location, PartWriter, Stream
from api_server.common.time import utcnow
from api_server.db.models import Base
from api_server.storages.providers import StorageProvider

DATABASE_STREAM = "database"
_CHUNK = 1 << 20


def libpq_dsn(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url}: not an SQLite file")
    return Path(database)


def table_order(names: list[str]) -> list[str]:
    """Parents before children (the models' foreign keys), tables the models do not know last."""
    known = [t.name for t in Base.metadata.sorted_tables if t.name in names]
    return known + sorted(n for n in names if n not in known and n != "alembic_version")


def sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    """The database's own tables (not SQLite's, not alembic's), in restore order."""
    query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return table_order([r[0] for r in conn.execute(query)])


def sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {n: int(conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in sqlite_tables(conn)}


def _sqlite_facts(conn: sqlite3.Connection) -> tuple[str | None, dict[str, int]]:
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    counts = sqlite_counts(conn)
    revision = None
    if "alembic_version" in names:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    return revision, counts


def dump_sqlite(url: str, provider: StorageProvider, location: Location) -> dict[str, Any]:
    path = sqlite_path(url)
    if not path.is_file():
        raise BackupError(f"{path}: the SQLite database does not exist (check KUBELABEL_DATA_DIR / DATABASE_URL)")
    with tempfile.TemporaryDirectory(prefix="kubelabel-backup-") as tmp:
        copy = Path(tmp) / "snapshot.db"
        source = sqlite3.connect(path, timeout=30)
        target = sqlite3.connect(copy)
        try:
            started = utcnow()
            source.backup(target)  # pages=-1: the whole database in one step, one snapshot
            revision, counts = _sqlite_facts(target)
        finally:
            target.close()
            source.close()
        writer = PartWriter(provider, location, Stream(DATABASE_STREAM))
        with copy.open("rb") as f:
            while chunk := f.read(_CHUNK):
                writer.write(chunk)
        stream = writer.close()
    stream.rows = sum(counts.values())
    return {"kind": "sqlite", "revision": revision, "snapshot_at": started.isoformat(), "tables": counts,
            "streams": [stream.to_json()]}  # fmt: skip


def dump_postgres(url: str, provider: StorageProvider, location: Location) -> dict[str, Any]:
    try:
        conn = psycopg.connect(libpq_dsn(url))
    except psycopg.Error as exc:
        raise BackupError(f"cannot connect to PostgreSQL: {exc}") from None
    streams: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    with conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction(), conn.cursor() as cur:
            # The snapshot is taken at the first statement; every COPY below reads that one.
            started = cur.execute("SELECT now()").fetchone()[0]  # type: ignore[index]  # now() always gives a row
            names = [r[0] for r in cur.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )]  # fmt: skip
            revision = None
            if "alembic_version" in names:
                row = cur.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
            for name in table_order(names):
                columns = [r[0] for r in cur.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
                    " AND table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position",
                    (name,),
                )]  # fmt: skip
                writer = PartWriter(provider, location, Stream(f"tables/{name}", extra={"columns": columns}))
                rows = 0
                statement = sql.SQL("COPY {} ({}) TO STDOUT").format(
                    sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns))
                )
                with cur.copy(statement) as copy:
                    for block in copy:
                        data = bytes(block)
                        rows += data.count(b"\n")  # text format: one line per row, newlines escaped
                        writer.write(data)
                stream = writer.close()
                stream.rows = counts[name] = rows
                streams.append({**stream.to_json(), "table": name})
    return {"kind": "postgresql", "revision": revision, "snapshot_at": started.isoformat(), "tables": counts,
            "streams": streams}  # fmt: skip
