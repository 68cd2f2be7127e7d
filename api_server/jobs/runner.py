"""Running jobs: the loop shared by `kubelabel worker` and the API's in-process runner.

Who runs jobs:
- `kubelabel worker`: always. With Redis it blocks on the Redis list (instant wake-up),
  announces itself there every KUBELABEL_REDIS_CHECK_INTERVAL seconds, and still polls the
  table every KUBELABEL_JOB_POLL_INTERVAL seconds (retries, missed ids).
- the API process, KUBELABEL_INPROCESS_JOBS=auto (default): unless Redis is configured, reachable
  and at least one worker announced itself recently. A commit that enqueued jobs wakes it at once.

Events have a thread of their own in whichever process runs jobs: it fans the event outbox out
(api_server/events.py) and steps the registered pumps (the webhook delivery engine), woken by a
commit that published events in this process, and otherwise every KUBELABEL_EVENTS_POLL_INTERVAL
seconds (other processes' events: the API's, when workers run them).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api_server import events
from api_server.db.base import utcnow
from api_server.jobs import queue, registry
from api_server.jobs.metrics import JOBS_TOTAL, events_cpu
from api_server.jobs.redis_wakeups import RedisWakeups
from api_server.settings import Settings

log = logging.getLogger(__name__)

PURGE_INTERVAL = 3600.0
# A worker that has not announced itself for this many check intervals counts as gone.
WORKER_TTL_INTERVALS = 3


class JobRunner:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        wakeups: RedisWakeups | None = None,
        worker: bool = False,
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.wakeups = wakeups
        self.worker = worker
        self.stopping = threading.Event()
        self._local = threading.Event()
        self._events = threading.Event()
        self._pumps: list[registry.Pump] = []
        self._fanned = False  # the last fan-out found events (the next one skips its probe)
        self._threads: list[threading.Thread] = []
        self._workers_alive = 0
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._purged_at = time.monotonic()
        self._housekeeping = threading.Lock()

    # --- who runs jobs ---------------------------------------------------------------------

    def active(self) -> bool:
        """Whether this process should run jobs right now."""
        if self.worker or self.settings.inprocess_jobs == "always":
            return True
        if self.settings.inprocess_jobs == "never":
            return False
        return self.wakeups is None or not self.wakeups.healthy or self._workers_alive == 0

    def notify(self, job_ids: list[int]) -> None:
        """Dispatch notifier: hand committed jobs to the workers, or wake the local threads."""
        if self.wakeups is not None and not self.active() and self.wakeups.push(job_ids):
            return
        self._local.set()

    def wake(self) -> None:
        self._local.set()
        self._events.set()

    def wake_events(self) -> None:
        """Events were published: fan them out now (when this process runs jobs)."""
        self._events.set()

    # --- running ---------------------------------------------------------------------------

    def run_one(self) -> bool:
        """Claim and run one due job; False when none was due."""
        job = queue.claim(self.session_factory, self.settings.job_lease_seconds)
        if job is None:
            return False
        self._execute(job)
        return True

    def _execute(self, job: queue.Claimed) -> None:
        reg = registry.get(job.kind)
        if job.attempts > job.max_attempts:
            # Only reachable when runs were lost (workers died mid-job) until the attempts ran out.
            queue.mark_failed(self.session_factory, job, f"gave up after {job.max_attempts} attempts", None)
            JOBS_TOTAL.labels(job.kind, "failed").inc()
            return
        retry_at = None
        if job.attempts < job.max_attempts:
            delay = queue.backoff_seconds(job.attempts, self.settings.job_backoff_base, self.settings.job_backoff_max)
            retry_at = utcnow() + timedelta(seconds=delay)
        if reg is None:
            self._failed(job, f"no handler is registered for job kind {job.kind!r}", retry_at)
            return
        if reg.lease_seconds and reg.lease_seconds != self.settings.job_lease_seconds:
            queue.extend_lease(self.session_factory, job, reg.lease_seconds)
        ctx = registry.JobContext(
            job_id=job.id,
            kind=job.kind,
            payload=job.payload,
            attempt=job.attempts,
            max_attempts=job.max_attempts,
            retry_at=retry_at,
            session_factory=self.session_factory,
            settings=self.settings,
        )
        try:
            reg.fn(ctx)
        except registry.PermanentJobError as exc:
            self._failed(job, str(exc) or type(exc).__name__, None)
        except Exception as exc:
            log.debug("job %s (%s) attempt %s failed", job.id, job.kind, job.attempts, exc_info=True)
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self._failed(job, detail, retry_at)
        else:
            queue.mark_done(self.session_factory, job)
            JOBS_TOTAL.labels(job.kind, "done").inc()

    def _failed(self, job: queue.Claimed, error: str, retry_at: Any) -> None:
        status = queue.mark_failed(self.session_factory, job, error, retry_at)
        outcome = "retry" if status == queue.QUEUED else "failed"
        JOBS_TOTAL.labels(job.kind, outcome).inc()
        if outcome == "failed":
            log.warning("job %s (%s) failed after %s attempt(s): %s", job.id, job.kind, job.attempts, error)

    def drain(self) -> int:
        """Fan out events, deliver what is due, run due jobs until none is due (burst mode); returns jobs run."""
        pumps = self._pumps or self._build_pumps()
        while not self.stopping.is_set():
            if not self.step_events(pumps):
                if all(pump.idle() for pump in pumps):
                    break
                time.sleep(0.01)  # sends in flight: their results are settled by the next step
        ran = 0
        while not self.stopping.is_set() and self.run_one():
            ran += 1
        if not self._pumps:
            for pump in pumps:
                pump.close()
        return ran

    # --- events ----------------------------------------------------------------------------

    def _build_pumps(self) -> list[registry.Pump]:
        return [factory(self.session_factory, self.settings, self.wake_events) for factory in registry.pumps()]

    def step_events(self, pumps: list[registry.Pump]) -> bool:
        """One fan-out of the outbox and one step of each pump; True when any of them had work."""
        busy = False
        try:
            with events_cpu("fan_out"):
                busy = self._fanned = events.fan_out(self.session_factory, probe=not self._fanned) > 0
        except Exception:
            self._fanned = False
            log.exception("could not fan out events; retrying shortly")
        for pump in pumps:
            try:
                busy = pump.step() or busy
            except Exception:
                log.exception("%s failed; retrying shortly", type(pump).__name__)
        return busy

    def _events_loop(self) -> None:
        while not self.stopping.is_set():
            if self.active() and self.step_events(self._pumps):
                # Busy: let work gather for a moment (KUBELABEL_EVENTS_GATHER_SECONDS), so that each
                # fan-out, claim and settle is one transaction for many events. Each costs a few
                # statements whatever its size: a step for every few events cost a team's labeling
                # rate more than the deliveries themselves (on SQLite every write also waits for the lock).
                self.stopping.wait(self.settings.events_gather_seconds)
                continue
            if self._events.wait(self.settings.events_poll_interval):
                self._events.clear()
        for pump in self._pumps:
            pump.close()

    # --- the loop --------------------------------------------------------------------------

    def _loop(self, index: int) -> None:
        while not self.stopping.is_set():
            self._housekeep(index)
            if self.active():
                try:
                    if self.run_one():
                        continue
                except Exception:
                    log.exception("job runner: could not claim or finish a job; retrying shortly")
            self._wait()

    def _wait(self) -> None:
        timeout = self.settings.job_poll_interval
        if self.active():
            try:
                upcoming = queue.seconds_until_next(self.session_factory)
            except Exception:
                upcoming = None
            if upcoming is not None:
                timeout = min(timeout, max(upcoming, 0.01))
        if self.worker and self.wakeups is not None and self.wakeups.healthy:
            self.wakeups.wait(timeout)
            return
        if self._local.wait(timeout):
            self._local.clear()

    def _housekeep(self, index: int) -> None:
        if index != 0:
            return
        now = time.monotonic()
        if now - self._purged_at >= PURGE_INTERVAL and self.active():
            self._purged_at = now
            self.upkeep()

    def upkeep(self) -> None:
        """Purge finished jobs and run the registered maintenance tasks (each failure only logged)."""
        try:
            n = queue.purge_finished(self.session_factory, timedelta(hours=self.settings.job_retention_hours))
            if n:
                log.info("purged %s finished job(s)", n)
        except Exception:
            log.exception("could not purge finished jobs")
        for task in registry.maintenance_tasks():
            try:
                task(self.session_factory, self.settings)
            except Exception:
                log.exception("maintenance task %s failed", getattr(task, "__qualname__", task))

    def _monitor(self) -> None:
        while not self.stopping.wait(self.settings.redis_check_interval):
            try:
                self.check_redis()
            except Exception:
                log.exception("could not check Redis")

    def check_redis(self) -> None:
        """Workers: say we are alive. API: see whether Redis answers and any worker is alive."""
        if self.wakeups is None:
            return
        if not self.wakeups.ping():
            self._workers_alive = 0
            return
        ttl = self.settings.redis_check_interval * WORKER_TTL_INTERVALS
        if self.worker:
            self.wakeups.announce(self.worker_id, ttl)
            return
        alive = self.wakeups.workers_alive(ttl)
        if (alive > 0) != (self._workers_alive > 0):
            log.info(
                "%s worker(s) reachable through Redis: %s",
                alive,
                "handing jobs to them" if alive else "running jobs in this process",
            )
        self._workers_alive = alive
        if alive == 0:
            self._local.set()  # jobs handed over earlier may still wait: run them here

    def start(self) -> JobRunner:
        if self.wakeups is not None:
            self.check_redis()
            # Its own thread: a long job must not silence a worker's heartbeat.
            monitor = threading.Thread(target=self._monitor, name="kubelabel-jobs-redis", daemon=True)
            monitor.start()
            self._threads.append(monitor)
        for i in range(self.settings.job_concurrency):
            thread = threading.Thread(target=self._loop, args=(i,), name=f"kubelabel-jobs-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._pumps = self._build_pumps()
        thread = threading.Thread(target=self._events_loop, name="kubelabel-events", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self._local.set()
        self._events.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        if self.wakeups is not None:
            if self.worker:
                self.wakeups.retire(self.worker_id)  # the API takes over at once, not after the TTL
            self.wakeups.close()

    def join(self) -> None:
        for thread in self._threads:
            while thread.is_alive():
                thread.join(0.5)
