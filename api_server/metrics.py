"""Prometheus metrics of the API server.

Request latency is observed per route template (never per raw path, to bound cardinality).
Per-project gauges are computed at scrape time from the database, so they are always
current and a deleted project disappears from /metrics by itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api_server.common.routing import canonical
from api_server.db.models import Annotation, Task

REGISTRY = CollectorRegistry(auto_describe=True)

REQUEST_DURATION = Histogram(
    "kubelabel_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
IMPORTED_TASKS = Counter("kubelabel_imported_tasks_total", "Tasks created by imports", ["project"], registry=REGISTRY)


class ProjectGauges(Collector):
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[Any]:
        tasks = GaugeMetricFamily("kubelabel_project_tasks_total", "Tasks per project", labels=["project"])
        labeled = GaugeMetricFamily(
            "kubelabel_project_labeled_tasks_total", "Labeled tasks per project", labels=["project"]
        )
        annotations = GaugeMetricFamily(
            "kubelabel_project_annotations_total", "Annotations per project", labels=["project"]
        )
        with self.session_factory() as session:
            rows = session.execute(
                select(Task.project_id, func.count(), func.count().filter(Task.is_labeled)).group_by(Task.project_id)
            )
            for project_id, total, done in rows:
                tasks.add_metric([str(project_id)], total)
                labeled.add_metric([str(project_id)], done)
            for project_id, total in session.execute(
                select(Annotation.project_id, func.count()).group_by(Annotation.project_id)
            ):
                annotations.add_metric([str(project_id)], total)
        yield tasks
        yield labeled
        yield annotations


class RequestTimer:
    """ASGI middleware observing request duration under the matched route's template."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = canonical(getattr(route, "path", None) or "unmatched")
            REQUEST_DURATION.labels(scope["method"], template, str(status["code"])).observe(
                time.perf_counter() - started
            )
