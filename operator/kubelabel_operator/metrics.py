"""Prometheus metrics: counters/histograms for reconciles, per-resource gauges built at scrape time.

Per-resource values live in an in-memory index that handlers update and deletions clear, and a
collector turns it into gauges on each scrape, so a deleted resource's series simply vanish.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, get_args

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kubelabel_operator.models.storage_connection import SyncState

SYNC_STATES: tuple[str, ...] = get_args(SyncState)

REGISTRY = CollectorRegistry(auto_describe=True)
RECONCILES = Counter(
    "kubelabel_operator_reconcile_total", "Reconciles by kind and result.", ["kind", "result"], registry=REGISTRY
)
RECONCILE_ERRORS = Counter(
    "kubelabel_operator_reconcile_errors_total", "Reconciles that raised.", ["kind"], registry=REGISTRY
)
RECONCILE_DURATION = Histogram(
    "kubelabel_operator_reconcile_duration_seconds",
    "Duration of one reconcile.",
    ["kind"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@contextmanager
def observe(kind: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        RECONCILES.labels(kind, "error").inc()
        RECONCILE_ERRORS.labels(kind).inc()
        raise
    else:
        RECONCILES.labels(kind, "success").inc()
    finally:
        RECONCILE_DURATION.labels(kind).observe(time.perf_counter() - start)


class ResourceIndex:
    """Latest known values per (kind, namespace, name); thread-safe (scrapes run in another thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str, str], dict[str, Any]] = {}

    def update(self, kind: str, namespace: str, name: str, **values: Any) -> None:
        with self._lock:
            self._items.setdefault((kind, namespace, name), {}).update(values)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._items.pop((kind, namespace, name), None)

    def snapshot(self) -> list[tuple[tuple[str, str, str], dict[str, Any]]]:
        with self._lock:
            return [(k, dict(v)) for k, v in self._items.items()]


INDEX = ResourceIndex()


class ResourceCollector(Collector):
    def __init__(self, index: ResourceIndex) -> None:
        self.index = index

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauges = {
            "ready": GaugeMetricFamily(
                "kubelabel_project_ready", "Project Ready (1/0).", labels=["namespace", "project"]
            ),
            "tasks": GaugeMetricFamily("kubelabel_project_tasks", "Tasks.", labels=["namespace", "project"]),
            "labeledTasks": GaugeMetricFamily(
                "kubelabel_project_labeled_tasks", "Tasks with an annotation.", labels=["namespace", "project"]
            ),
            "annotations": GaugeMetricFamily(
                "kubelabel_project_annotations", "Annotations.", labels=["namespace", "project"]
            ),
            # A project scaled to zero is not ready and not broken either: alerts tell the two apart.
            "replicas": GaugeMetricFamily(
                "kubelabel_project_replicas", "API server replicas the spec asks for.", labels=["namespace", "project"]
            ),
        }
        state = GaugeMetricFamily(
            "kubelabel_storage_sync_state", "Current sync state (1).", labels=["namespace", "storage", "state"]
        )
        duration = GaugeMetricFamily(
            "kubelabel_storage_sync_duration_seconds", "Last sync duration.", labels=["namespace", "storage"]
        )
        count = GaugeMetricFamily(
            "kubelabel_storage_last_sync_count", "Objects in the last sync.", labels=["namespace", "storage"]
        )
        up = GaugeMetricFamily("kubelabel_mlbackend_up", "ML backend healthy (1/0).", labels=["namespace", "backend"])
        for (kind, namespace, name), values in self.index.snapshot():
            if kind == "LabelingProject":
                for field, gauge in gauges.items():
                    if values.get(field) is not None:
                        gauge.add_metric([namespace, name], float(values[field]))
            elif kind == "StorageConnection":
                current = values.get("syncState")
                for s in SYNC_STATES:
                    state.add_metric([namespace, name, s], 1.0 if s == current else 0.0)
                if values.get("duration") is not None:
                    duration.add_metric([namespace, name], float(values["duration"]))
                if values.get("count") is not None:
                    count.add_metric([namespace, name], float(values["count"]))
            elif kind == "MLBackend" and values.get("up") is not None:
                up.add_metric([namespace, name], float(values["up"]))
        yield from gauges.values()
        yield from (state, duration, count, up)


REGISTRY.register(ResourceCollector(INDEX))


def serve(host: str, port: int) -> None:
    start_http_server(port, addr=host, registry=REGISTRY)
