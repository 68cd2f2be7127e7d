"""`kubelabel worker [--burst]`: fan events out and run queued jobs (every kind: api_server/wiring.py).

Same settings as the API server (DATABASE_URL, REDIS_URL, KUBELABEL_*). With Redis, workers
wake up the moment a job is enqueued; without it (or while it is down) they poll the jobs
table every KUBELABEL_JOB_POLL_INTERVAL seconds. SIGTERM/SIGINT: finish the running jobs, exit 0.
--burst: run every job that is due now, then exit (0, or 1 when the database is unusable).
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

from api_server.common.secrets import masked_url
from api_server.db.session import make_engine, make_session_factory
from api_server.jobs.redis_wakeups import RedisWakeups
from api_server.jobs.runner import JobRunner
from api_server.settings import get_settings
from api_server.wiring import wire

log = logging.getLogger("api_server.worker")


def main(burst: bool = False) -> int:
    settings = get_settings()
    wire()  # what the jobs and events run: api_server/wiring.py
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    engine = make_engine(settings.resolved_database_url(), settings.db_connections)
    wakeups = RedisWakeups(settings.redis_url, settings.redis_prefix) if settings.redis_url else None
    runner = JobRunner(make_session_factory(engine), settings, wakeups=wakeups, worker=True)

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the running jobs, then exiting", signal.Signals(signum).name)
        runner.stopping.set()
        runner.wake()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if settings.worker_metrics_port and not burst:
        from prometheus_client import start_http_server

        from api_server.metrics import REGISTRY

        start_http_server(settings.worker_metrics_port, registry=REGISTRY)
    try:
        if burst:
            ran = runner.drain()
            log.info("burst done: %s job(s) run", ran)
            return 0
        log.info(
            "worker started (%s thread(s), %s)",
            settings.job_concurrency,
            f"Redis {masked_url(settings.redis_url)}" if settings.redis_url else "polling the jobs table",
        )
        runner.start()
        runner.join()
        runner.stop()  # leaves the workers' register at once, so the API takes over without waiting
        log.info("worker stopped")
        return 0
    except Exception:
        log.exception("worker failed")
        return 1
    finally:
        if wakeups is not None:
            wakeups.close()
        engine.dispose()
