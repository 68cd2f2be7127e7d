"""Bulk row insertion: executemany on SQLite, COPY on PostgreSQL, never one round trip per row.

Rows go through the session's own DBAPI connection, so they share its transaction: an
import that fails half-way rolls back everything it wrote. Ids are allocated up front
(sequence values on PostgreSQL, max(id)+n on SQLite under the write lock the import
already holds) so tasks, their annotations and predictions can reference each other
without reading anything back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.orm import Session


def sqlite_timestamp(value: datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime type writes and parses.
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _default_of(column: Any, now: datetime) -> Any:
    default = column.default
    if default is None:
        return None
    arg = default.arg
    if callable(arg):
        # Column defaults here are utcnow/dict/list; callables taking a context get none.
        try:
            return arg()
        except TypeError:
            return now
    return arg


class BulkTable:
    """Inserts tuples into `table`: `columns` are given per row, every other column gets its default once."""

    def __init__(self, session: Session, table: Table, columns: Sequence[str], now: datetime) -> None:
        self.session = session
        self.table = table
        self.columns = list(columns)
        self.dialect = session.get_bind().dialect.name
        given = set(columns)
        rest = [c for c in table.columns if c.name not in given]
        missing = [c.name for c in rest if not c.nullable and c.default is None and c.server_default is None]
        if missing:
            raise RuntimeError(f"bulk insert into {table.name} lacks values for {missing}")
        self.rest_names = [c.name for c in rest if c.default is not None]
        rest_values = [_default_of(c, now) for c in rest if c.default is not None]
        self.all_columns = self.columns + self.rest_names
        self.rest_values = tuple(self._encode_constant(v) for v in rest_values)

    def _driver(self) -> Any:
        return self.session.connection().connection.driver_connection

    def _encode_constant(self, value: Any) -> Any:
        import orjson

        if isinstance(value, (dict, list)):
            value = orjson.dumps(value).decode()
        if self.dialect == "postgresql":
            return copy_text(value)
        if isinstance(value, datetime):
            return sqlite_timestamp(value)
        if isinstance(value, bool):
            return int(value)
        return value

    def allocate_ids(self, n: int) -> list[int]:
        """`n` fresh primary keys (the caller holds the write lock on SQLite)."""
        if n == 0:
            return []
        name = self.table.name
        if self.dialect == "postgresql":
            rows = self.session.execute(
                text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
                {"t": name, "n": n},
            )
            return [r[0] for r in rows]
        start = (self.session.execute(text(f'SELECT max(id) FROM "{name}"')).scalar() or 0) + 1
        return list(range(start, start + n))

    # -- SQLite -----------------------------------------------------------------------

    def insert_sqlite(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        cols = ", ".join(f'"{c}"' for c in self.all_columns)
        marks = ", ".join("?" for _ in self.all_columns)
        sql = f'INSERT INTO "{self.table.name}" ({cols}) VALUES ({marks})'
        rest = self.rest_values
        cursor = self._driver().cursor()
        try:
            cursor.executemany(sql, [row + rest for row in rows] if rest else rows)
        finally:
            cursor.close()

    def insert_sqlite_values(self, values_sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """executemany with a caller-built VALUES list (numbered parameters and literals) over all columns."""
        cols = ", ".join(f'"{c}"' for c in self.all_columns)
        cursor = self._driver().cursor()
        try:
            cursor.executemany(f'INSERT INTO "{self.table.name}" ({cols}) VALUES ({values_sql})', rows)
        finally:
            cursor.close()

    # -- PostgreSQL ---------------------------------------------------------------------

    def copy_lines(self, lines: Sequence[bytes], *, trusted: bool = False) -> None:
        """COPY pre-encoded lines (text format, tab separated, without the trailing constant columns).

        `trusted`: the caller guarantees every foreign key (rows it just wrote, the project it holds
        locked), so the per-row foreign-key triggers are skipped for this statement (see skip_fk_checks).
        """
        if not lines:
            return
        cols = ", ".join(f'"{c}"' for c in self.all_columns)
        suffix = b"".join(b"\t" + v for v in self.rest_values) + b"\n"
        cursor = self._driver().cursor()
        try:
            if trusted:
                cursor.execute("SET LOCAL session_replication_role = replica")
            with cursor.copy(f'COPY "{self.table.name}" ({cols}) FROM STDIN') as copy:
                buf: list[bytes] = []
                size = 0
                for line in lines:
                    buf.append(line)
                    buf.append(suffix)
                    size += len(line)
                    if size > 1 << 20:
                        copy.write(b"".join(buf))
                        buf.clear()
                        size = 0
                if buf:
                    copy.write(b"".join(buf))
            if trusted:
                cursor.execute("SET LOCAL session_replication_role = origin")
        finally:
            cursor.close()


def skip_fk_checks(session: Session) -> bool:
    """Whether this PostgreSQL role may skip foreign-key triggers for COPYs it vouches for.

    Per-row foreign-key checks are most of a COPY's cost. Skipping them needs
    `session_replication_role`: superusers have it, and on PostgreSQL 15+ any role can be
    granted it (`GRANT SET ON PARAMETER session_replication_role TO <role>`). Probed once per
    import inside a savepoint; without the privilege imports simply keep the checks.
    """
    try:
        with session.begin_nested():
            session.execute(text("SET LOCAL session_replication_role = replica"))
            session.execute(text("SET LOCAL session_replication_role = origin"))
        return True
    except Exception:  # noqa: BLE001 - insufficient privilege: keep the checks
        return False


NULL = b"\\N"


def copy_text(value: Any) -> bytes:
    """One value in COPY's text format."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, datetime):
        return value.isoformat().encode()
    if isinstance(value, bytes):
        return copy_escape(value)
    return copy_escape(str(value).encode())


def copy_escape(raw: bytes) -> bytes:
    # JSON from orjson never holds raw tabs/newlines (they are escaped inside strings), only backslashes.
    if b"\\" in raw:
        raw = raw.replace(b"\\", b"\\\\")
    if b"\n" in raw or b"\t" in raw or b"\r" in raw:
        raw = raw.replace(b"\n", b"\\n").replace(b"\t", b"\\t").replace(b"\r", b"\\r")
    return raw


RowEncoder = Callable[[tuple[Any, ...]], bytes]
