"""Job queue metrics: outcomes per kind (counter) and depth per queue (read from the table at scrape)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from api_server.jobs import queue, registry
from api_server.metrics import REGISTRY

log = logging.getLogger(__name__)

JOBS_TOTAL = Counter(
    "kubelabel_jobs_total",
    "Job runs by kind and outcome (done, retry, failed)",
    ["kind", "outcome"],
    registry=REGISTRY,
)

# What events cost this process (thread CPU time, not waits): the price of subscribers, per stage.
EVENTS_CPU = Counter(
    "kubelabel_events_cpu_seconds_total",
    "CPU time this process spent on events, by stage (fan_out, claim, settle, send)",
    ["stage"],
    registry=REGISTRY,
)


@contextmanager
def events_cpu(stage: str) -> Iterator[None]:
    started = time.thread_time()
    try:
        yield
    finally:
        EVENTS_CPU.labels(stage).inc(time.thread_time() - started)


class QueueDepth(Collector):
    """kubelabel_queue_depth{queue}: queued jobs per kind (a kind is a queue)."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[Any]:
        family = GaugeMetricFamily("kubelabel_queue_depth", "Jobs waiting to run, per queue", labels=["queue"])
        try:
            with self.session_factory() as session:
                depth = dict.fromkeys(registry.kinds(), 0) | queue.depth_by_kind(session)
                for kind, count in sorted(depth.items()):
                    family.add_metric([kind], count)
        except Exception:  # a scrape must not fail because the database hiccuped
            log.exception("could not read the queue depth")
        yield family
