"""The jobs table as a queue: enqueue, claim, finish, retry with backoff.

Claiming is one UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING statement: on PostgreSQL
the inner SELECT takes the row with FOR UPDATE SKIP LOCKED, so concurrent workers never wait
for or double-claim a row; on SQLite the statement holds the database's write lock for its
whole run, and a process-wide lock keeps this process's threads from contending for it.
Finishing a job only touches the row while it is still this run's (same status and attempt),
so a run whose lease expired cannot overwrite the run that replaced it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from api_server.common.time import as_utc
from api_server.db.base import utcnow
from api_server.db.models import Job
from api_server.db.session import is_sqlite
from api_server.jobs import dispatch

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
DEFAULT_MAX_ATTEMPTS = 5
_ERROR_LIMIT = 4000
_sqlite_claim_lock = threading.Lock()


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    run_after: datetime | None = None,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Job:
    """Add a job in the caller's transaction; it becomes runnable when that transaction commits."""
    now = utcnow()
    job = Job(
        kind=kind,
        payload=payload or {},
        status=QUEUED,
        attempts=0,
        max_attempts=max_attempts,
        run_after=run_after or now,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    dispatch.remember(session, job.id)
    return job


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


def backoff_seconds(failed_attempts: int, base: float, cap: float) -> float:
    """Delay before the next attempt after `failed_attempts` failures: base, 2*base, 4*base ... capped."""
    if failed_attempts < 1:
        return 0.0
    return float(min(base * (2 ** min(failed_attempts - 1, 32)), cap))


def _due(now: datetime) -> Any:
    # Queued and due, or running with an expired lease (its worker died).
    return and_(
        Job.status.in_((QUEUED, RUNNING)),
        Job.run_after <= now,
        or_(Job.status == QUEUED, Job.locked_until < now),
    )


def claim(session_factory: sessionmaker[Session], lease_seconds: int, kinds: list[str] | None = None) -> Claimed | None:
    """Take the oldest due job (or None) and mark it running with a lease."""
    with session_factory() as session:
        sqlite = is_sqlite(session.get_bind())
        now = utcnow()
        pick = select(Job.id).where(_due(now))
        if kinds is not None:
            pick = pick.where(Job.kind.in_(kinds))
        pick = pick.order_by(Job.id).limit(1)
        if not sqlite:
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(Job)
            .where(Job.id == pick.scalar_subquery())
            .values(
                status=RUNNING,
                attempts=Job.attempts + 1,
                locked_until=now + timedelta(seconds=lease_seconds),
                updated_at=now,
            )
            .returning(Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts)
            .execution_options(synchronize_session=False)
        )
        if sqlite:
            with _sqlite_claim_lock:
                row = session.execute(stmt).first()
                session.commit()
        else:
            row = session.execute(stmt).first()
            session.commit()
    if row is None:
        return None
    return Claimed(id=row[0], kind=row[1], payload=dict(row[2] or {}), attempts=row[3], max_attempts=row[4])


def _ours(job: Claimed) -> Any:
    return and_(Job.id == job.id, Job.status == RUNNING, Job.attempts == job.attempts)


def mark_done(session_factory: sessionmaker[Session], job: Claimed) -> None:
    with session_factory() as session:
        now = utcnow()
        session.execute(
            update(Job)
            .where(_ours(job))
            .values(status=DONE, locked_until=None, last_error=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()


def mark_failed(session_factory: sessionmaker[Session], job: Claimed, error: str, retry_at: datetime | None) -> str:
    """Record a failed attempt: queue it again at `retry_at`, or fail it for good. Returns the new status."""
    status = QUEUED if retry_at is not None else FAILED
    with session_factory() as session:
        values: dict[str, Any] = {
            "status": status,
            "locked_until": None,
            "last_error": error[:_ERROR_LIMIT],
            "updated_at": utcnow(),
        }
        if retry_at is not None:
            values["run_after"] = retry_at
        session.execute(update(Job).where(_ours(job)).values(**values).execution_options(synchronize_session=False))
        session.commit()
    return status


def seconds_until_next(session_factory: sessionmaker[Session]) -> float | None:
    """Seconds until the earliest queued job is due (0 when one is due now); None when none is queued."""
    with session_factory() as session:
        earliest = session.scalar(select(func.min(Job.run_after)).where(Job.status == QUEUED))
        session.commit()  # polled every few seconds: a ROLLBACK would drop the connection's prepared statements
    if earliest is None:
        return None
    return max(0.0, (as_utc(earliest) - utcnow()).total_seconds())


def depth_by_kind(session: Session) -> dict[str, int]:
    rows = session.execute(select(Job.kind, func.count()).where(Job.status == QUEUED).group_by(Job.kind))
    return {kind: int(n) for kind, n in rows}


def purge_finished(session_factory: sessionmaker[Session], older_than: timedelta) -> int:
    """Delete done and failed jobs last touched before now - older_than."""
    with session_factory() as session:
        result = session.execute(
            delete(Job).where(Job.status.in_((DONE, FAILED)), Job.updated_at < utcnow() - older_than)
        )
        session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def extend_lease(session_factory: sessionmaker[Session], job: Claimed, lease_seconds: int) -> None:
    with session_factory() as session:
        session.execute(
            update(Job)
            .where(_ours(job))
            .values(locked_until=utcnow() + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        session.commit()
