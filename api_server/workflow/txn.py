"""Write transactions of the labeling workflow, correct under concurrency on both databases.

PostgreSQL: ordinary READ COMMITTED transactions; the services lock the task row
(`SELECT ... FOR UPDATE`) before deciding anything about it, and the next-task query skips
rows another transaction holds (`FOR UPDATE SKIP LOCKED`).

SQLite has one writer at a time, and a deferred transaction that reads first and writes
later can fail with "database is locked" when another writer got in between. So on SQLite
the workflow's writers run one at a time per process (a lock) and open their transaction
with BEGIN IMMEDIATE (which also orders them against other processes on the same file):
every decision reads the state it writes over.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from api_server.db.writer import SQLITE_WRITER

_sqlite_writer = SQLITE_WRITER  # shared with the event fan-out and the delivery engine


def is_sqlite(session: Session) -> bool:
    bind = session.get_bind()
    return bind.dialect.name == "sqlite"


@contextmanager
def writing(session: Session) -> Iterator[None]:
    """Run the block as one serialized write transaction on SQLite (no-op on PostgreSQL).

    The block commits (services call session.commit()); whatever it leaves open is rolled back.
    """
    if not is_sqlite(session):
        # Roll back here, in the thread that ran the block, not later in the request's cleanup:
        # the row locks it took must never wait for a free thread to be released.
        try:
            yield
        except BaseException:
            session.rollback()
            raise
        return
    with _sqlite_writer:
        # Reads done before (authentication, permission checks) opened no SQLite transaction:
        # pysqlite only begins one implicitly before DML. End SQLAlchemy's bookkeeping anyway.
        session.commit()
        connection = session.connection()
        driver = connection.connection.dbapi_connection
        if driver is not None and not getattr(driver, "in_transaction", False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            session.rollback()
