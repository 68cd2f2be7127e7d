"""Restore a backup into an empty database, verifying every part's checksum.

Supported: SQLite backup -> SQLite, PostgreSQL backup -> PostgreSQL, and SQLite backup ->
PostgreSQL (rows copied through the models, for a backup at this version's schema). A
PostgreSQL backup cannot be restored into SQLite (the loop's database functions and types have
no SQLite form). The target must be empty: no rows in any table (no tables at all, or a fresh
`kubelabel migrate`); anything else is refused before a byte is written.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from alembic.script import ScriptDirectory
from psycopg import sql
from sqlalchemy import create_engine, select

from api_server.backup.dump import DATABASE_STREAM, libpq_dsn, sqlite_counts, sqlite_path, table_order
from api_server.backup.store import BackupError, Location, read_stream
from api_server.db.migrate import alembic_config, upgrade
from api_server.db.models import Base
from api_server.db.session import is_sqlite
from api_server.storages.providers import StorageProvider

_BATCH = 1000


def restore(manifest: dict[str, Any], provider: StorageProvider, location: Location, url: str) -> dict[str, int]:
    """Restore the backup `manifest` describes into `url`; returns the rows per table."""
    kind = manifest.get("kind")
    if kind == "sqlite" and is_sqlite(url):
        return _sqlite_into_sqlite(manifest, provider, location, sqlite_path(url))
    if kind == "postgresql" and not is_sqlite(url):
        return _postgres_into_postgres(manifest, provider, location, url)
    if kind == "sqlite":
        return _sqlite_into_postgres(manifest, provider, location, url)
    raise BackupError(f"a {kind} backup cannot be restored into SQLite; restore it into PostgreSQL")


# --- checks ----------------------------------------------------------------------------------------


def _sqlite_nonempty(path: Path) -> list[str]:
    if not path.exists() or path.stat().st_size == 0:
        return []
    conn = sqlite3.connect(path, timeout=30)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [n for n in names if n != "alembic_version" and not n.startswith("sqlite_")
                and conn.execute(f'SELECT 1 FROM "{n}" LIMIT 1').fetchone()]  # fmt: skip
    finally:
        conn.close()


def _postgres_state(conn: psycopg.Connection[Any]) -> tuple[list[str], str | None]:
    """(tables holding rows, the alembic revision or None)."""
    names = [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    )]  # fmt: skip
    full = [n for n in names if n != "alembic_version" and conn.execute(
        sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(n))).fetchone()]  # fmt: skip
    revision = None
    if "alembic_version" in names:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    return full, revision


def _refuse_nonempty(where: str, tables: list[str]) -> None:
    if tables:
        shown = ", ".join(sorted(tables)[:8]) + (", ..." if len(tables) > 8 else "")
        raise BackupError(
            f"{where} is not empty (rows in {shown}): restore only into an empty database; "
            "point DATABASE_URL / KUBELABEL_DATA_DIR at a new one"
        )


def _prepare_postgres(url: str, revision: str | None) -> None:
    """Refuse a non-empty target; bring an empty one to the backup's schema revision."""
    with psycopg.connect(libpq_dsn(url)) as conn:
        full, current = _postgres_state(conn)
    _refuse_nonempty("the target PostgreSQL database", full)
    if current is not None and current != revision:
        raise BackupError(
            f"the target database is at schema revision {current}, the backup at {revision}: "
            "restore into a database without tables (not migrated yet)"
        )
    if revision is None:
        raise BackupError("the backup records no schema revision; it cannot be restored into PostgreSQL")
    upgrade(url, revision)


def _check_counts(manifest: dict[str, Any], counts: dict[str, int]) -> None:
    expected = {t: int(n) for t, n in manifest["tables"].items()}
    wrong = {t: (expected.get(t), counts.get(t)) for t in set(expected) | set(counts)
             if expected.get(t, 0) != counts.get(t, 0)}  # fmt: skip
    if wrong:
        raise BackupError(f"row counts differ from the manifest (table: manifest, restored): {wrong}")


# --- SQLite -> SQLite ------------------------------------------------------------------------------


def _download_sqlite(manifest: dict[str, Any], provider: StorageProvider, location: Location, into: Path) -> None:
    stream = next((s for s in manifest["streams"] if s["name"] == DATABASE_STREAM), None)
    if stream is None:
        raise BackupError("the manifest lists no database file")
    with into.open("wb") as f:
        for chunk in read_stream(provider, location, stream):
            f.write(chunk)
    conn = sqlite3.connect(into)
    try:
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError("the restored SQLite file fails its integrity check")
        counts = sqlite_counts(conn)
    finally:
        conn.close()
    _check_counts(manifest, counts)


def _sqlite_into_sqlite(manifest: dict[str, Any], provider: StorageProvider, location: Location, path: Path):
    _refuse_nonempty(str(path), _sqlite_nonempty(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.restoring")
    try:
        _download_sqlite(manifest, provider, location, partial)
        for suffix in ("-wal", "-shm"):  # an empty target's journal must not replay onto the restored file
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return {t: int(n) for t, n in manifest["tables"].items()}


# --- PostgreSQL -> PostgreSQL ----------------------------------------------------------------------


def _reset_sequences(conn: psycopg.Connection[Any], tables: list[str]) -> None:
    """Every serial/identity sequence continues past the restored ids."""
    for table in tables:
        rows = conn.execute(
            "SELECT a.attname, pg_get_serial_sequence(quote_ident(%s), a.attname) FROM pg_attribute a"
            " WHERE a.attrelid = quote_ident(%s)::regclass AND a.attnum > 0 AND NOT a.attisdropped",
            (table, table),
        ).fetchall()
        for column, sequence in rows:
            if sequence:
                conn.execute(
                    sql.SQL("SELECT setval(%s, COALESCE((SELECT max({}) FROM {}), 0) + 1, false)").format(
                        sql.Identifier(column), sql.Identifier(table)
                    ),
                    (sequence,),
                )


def _postgres_into_postgres(manifest: dict[str, Any], provider: StorageProvider, location: Location, url: str):
    _prepare_postgres(url, manifest.get("revision"))
    counts: dict[str, int] = {}
    with psycopg.connect(libpq_dsn(url)) as conn, conn.transaction(), conn.cursor() as cur:
        for stream in manifest["streams"]:
            table, columns = stream["table"], stream["columns"]
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            with cur.copy(statement) as copy:
                for chunk in read_stream(provider, location, stream):
                    copy.write(chunk)
            counts[table] = cur.rowcount
        _check_counts(manifest, counts)
        _reset_sequences(conn, list(counts))
    return counts


# --- SQLite -> PostgreSQL --------------------------------------------------------------------------


def _batches(rows: Iterator[Any]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(dict(row._mapping))
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _sqlite_into_postgres(manifest: dict[str, Any], provider: StorageProvider, location: Location, url: str):
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if manifest.get("revision") != head:
        raise BackupError(
            f"an SQLite backup restores into PostgreSQL only at this version's schema ({head}); the backup is at "
            f"{manifest.get('revision')}: restore it into SQLite, migrate, and back up again"
        )
    _prepare_postgres(url, head)
    with tempfile.TemporaryDirectory(prefix="kubelabel-restore-") as tmp:
        copy = Path(tmp) / "snapshot.db"
        _download_sqlite(manifest, provider, location, copy)
        source = create_engine(f"sqlite:///{copy}")
        target = create_engine(url)
        counts: dict[str, int] = {}
        try:
            with source.connect() as src, target.begin() as dst:
                for name in table_order(list(manifest["tables"])):
                    table = Base.metadata.tables[name]
                    counts[name] = 0
                    result = src.execution_options(yield_per=_BATCH).execute(select(table))
                    for batch in _batches(iter(result)):
                        dst.execute(table.insert(), batch)
                        counts[name] += len(batch)
                _check_counts(manifest, counts)
                raw = dst.connection.driver_connection
                _reset_sequences(raw, list(counts))  # type: ignore[arg-type]  # PostgreSQL here: psycopg's connection
        finally:
            source.dispose()
            target.dispose()
    return counts
