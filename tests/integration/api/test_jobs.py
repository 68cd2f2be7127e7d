"""The durable job queue on SQLite and PostgreSQL: transactions, retries, backoff, concurrent claims."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from api_server.common.time import as_utc
from api_server.db.base import utcnow
from api_server.db.migrate import upgrade
from api_server.db.models import Job
from api_server.db.session import make_engine, make_session_factory
from api_server.jobs import PermanentJobError, dispatch, enqueue, job_handler, queue
from api_server.jobs.metrics import JOBS_TOTAL
from api_server.jobs.runner import JobRunner
from api_server.settings import Settings
from tests.conftest import BACKENDS
from tests.support.databases import create_postgres_database, drop_postgres_database, sqlite_url
from tests.support.services import require_port

CALLS: list[tuple[str, int, int]] = []
FLAKY_FAILURES = 2


@job_handler("test.ok")
def _ok(ctx):  # type: ignore[no-untyped-def]
    CALLS.append(("ok", ctx.job_id, ctx.attempt))


@job_handler("test.flaky")
def _flaky(ctx):  # type: ignore[no-untyped-def]
    CALLS.append(("flaky", ctx.job_id, ctx.attempt))
    if ctx.attempt <= FLAKY_FAILURES:
        raise RuntimeError(f"boom {ctx.attempt}")


@job_handler("test.always_fails")
def _always(ctx):  # type: ignore[no-untyped-def]
    raise ValueError("never works")


@job_handler("test.permanent")
def _permanent(ctx):  # type: ignore[no-untyped-def]
    raise PermanentJobError("payload names nothing that exists")


@pytest.fixture(params=BACKENDS)
def job_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """A fresh migrated database of its own (no API server polls it)."""
    if request.param == "postgres":
        require_port("PostgreSQL", "127.0.0.1", 5432)
        url = create_postgres_database("kl_jobs")
    else:
        url = sqlite_url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    CALLS.clear()
    yield make_session_factory(engine)
    engine.dispose()
    if request.param == "postgres":
        drop_postgres_database(url)


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"KUBELABEL_JOB_BACKOFF_BASE": 30, "KUBELABEL_JOB_BACKOFF_MAX": 100}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def load(factory: sessionmaker[Session], job_id: int) -> Job:
    with factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def make_due(factory: sessionmaker[Session], job_id: int) -> None:
    with factory() as session:
        session.execute(update(Job).where(Job.id == job_id).values(run_after=utcnow() - timedelta(seconds=1)))
        session.commit()


def test_enqueue_belongs_to_the_callers_transaction(job_db):
    seen: list[list[int]] = []
    engine = job_db.kw["bind"]
    dispatch.register(engine, seen.append)
    try:
        with job_db() as session:
            enqueue(session, "test.ok", {"n": 1})
            session.rollback()
        with job_db() as session:
            assert session.scalars(select(Job)).all() == []
            job = enqueue(session, "test.ok", {"n": 2})
            assert seen == []  # not before the commit
            session.commit()
        assert seen == [[job.id]]
    finally:
        dispatch.unregister(engine)
    stored = load(job_db, job.id)
    assert (stored.status, stored.payload, stored.attempts) == ("queued", {"n": 2}, 0)


def test_successful_job_is_done(job_db):
    with job_db() as session:
        job_id = enqueue(session, "test.ok").id
        session.commit()
    before = JOBS_TOTAL.labels("test.ok", "done")._value.get()
    runner = JobRunner(job_db, settings())
    assert runner.run_one() is True
    assert runner.run_one() is False
    assert [c for c in CALLS] == [("ok", job_id, 1)]
    assert load(job_db, job_id).status == "done"
    assert JOBS_TOTAL.labels("test.ok", "done")._value.get() == before + 1


def test_failures_are_retried_with_exponential_backoff(job_db):
    with job_db() as session:
        job_id = enqueue(session, "test.flaky", max_attempts=5).id
        session.commit()
    runner = JobRunner(job_db, settings())
    started = utcnow()
    assert runner.run_one() is True
    first = load(job_db, job_id)
    assert first.status == "queued" and first.attempts == 1 and "boom 1" in first.last_error
    first_delay = (as_utc(first.run_after) - started).total_seconds()
    assert 30 <= first_delay < 60
    assert runner.run_one() is False  # not due yet

    make_due(job_db, job_id)
    started = utcnow()
    assert runner.run_one() is True
    second = load(job_db, job_id)
    assert second.attempts == 2 and "boom 2" in second.last_error
    assert 60 <= (as_utc(second.run_after) - started).total_seconds() < 90  # doubled

    make_due(job_db, job_id)
    assert runner.run_one() is True
    assert load(job_db, job_id).status == "done"
    assert [c[2] for c in CALLS] == [1, 2, 3]


def test_gives_up_after_max_attempts(job_db):
    with job_db() as session:
        job_id = enqueue(session, "test.always_fails", max_attempts=2).id
        session.commit()
    runner = JobRunner(job_db, settings())
    assert runner.run_one()
    make_due(job_db, job_id)
    failed_before = JOBS_TOTAL.labels("test.always_fails", "failed")._value.get()
    assert runner.run_one()
    job = load(job_db, job_id)
    assert (job.status, job.attempts) == ("failed", 2)
    assert "ValueError: never works" in job.last_error
    assert JOBS_TOTAL.labels("test.always_fails", "failed")._value.get() == failed_before + 1
    make_due(job_db, job_id)
    assert runner.run_one() is False


def test_permanent_error_and_unknown_kind(job_db):
    with job_db() as session:
        permanent = enqueue(session, "test.permanent").id
        unknown = enqueue(session, "test.nobody_handles_this").id
        session.commit()
    runner = JobRunner(job_db, settings())
    assert runner.run_one() and runner.run_one()
    job = load(job_db, permanent)
    assert (job.status, job.attempts, job.last_error) == ("failed", 1, "payload names nothing that exists")
    job = load(job_db, unknown)
    assert job.status == "queued" and "test.nobody_handles_this" in job.last_error


def test_a_lost_run_is_picked_up_again_after_its_lease(job_db):
    with job_db() as session:
        job_id = enqueue(session, "test.ok").id
        session.commit()
    claimed = queue.claim(job_db, lease_seconds=300)
    assert claimed is not None and claimed.attempts == 1
    assert queue.claim(job_db, lease_seconds=300) is None  # leased
    with job_db() as session:  # the worker holding it died: its lease runs out
        session.execute(update(Job).where(Job.id == job_id).values(locked_until=utcnow() - timedelta(seconds=1)))
        session.commit()
    again = queue.claim(job_db, lease_seconds=300)
    assert again is not None and again.id == job_id and again.attempts == 2
    # The lost run finishing late must not overwrite the new run's state.
    queue.mark_done(job_db, claimed)
    assert load(job_db, job_id).status == "running"
    queue.mark_done(job_db, again)
    assert load(job_db, job_id).status == "done"


def test_concurrent_claims_never_share_a_job(job_db):
    with job_db() as session:
        ids = {enqueue(session, "test.ok", {"i": i}).id for i in range(40)}
        session.commit()
    claimed: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def claimer() -> None:
        try:
            while (job := queue.claim(job_db, lease_seconds=300)) is not None:
                with lock:
                    claimed.append(job.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claimer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(claimed) == sorted(ids)  # each exactly once


def test_queue_depth_and_purge(job_db):
    with job_db() as session:
        enqueue(session, "test.ok")
        enqueue(session, "test.ok")
        enqueue(session, "test.flaky", run_after=utcnow() + timedelta(hours=1))
        session.commit()
        assert queue.depth_by_kind(session) == {"test.ok": 2, "test.flaky": 1}
    assert queue.seconds_until_next(job_db) == 0
    runner = JobRunner(job_db, settings())
    assert runner.drain() == 2
    with job_db() as session:
        assert queue.depth_by_kind(session) == {"test.flaky": 1}
        session.execute(update(Job).where(Job.status == "done").values(updated_at=utcnow() - timedelta(days=30)))
        session.commit()
    assert queue.purge_finished(job_db, timedelta(days=7)) == 2
    assert 3500 < queue.seconds_until_next(job_db) <= 3600
