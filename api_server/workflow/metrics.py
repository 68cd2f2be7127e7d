"""Workflow metrics (process-wide, on api_server.metrics.REGISTRY)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from api_server.metrics import REGISTRY

ANNOTATIONS_SUBMITTED = Counter(
    "kubelabel_annotations_submitted_total", "Annotations submitted (not skipped)", ["project"], registry=REGISTRY
)
ANNOTATIONS_SKIPPED = Counter(
    "kubelabel_annotations_skipped_total", "Tasks skipped (cancelled annotations)", ["project"], registry=REGISTRY
)
REVIEWS = Counter("kubelabel_reviews_total", "Annotation reviews by verdict", ["project", "verdict"], registry=REGISTRY)
NEXT_TASK_DURATION = Histogram(
    "kubelabel_next_task_duration_seconds",
    "Time to pick, lock and return the next task of an annotator",
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
PG_LOOP_CALLS = Counter(
    "kubelabel_pg_loop_calls_total",
    "/next and submissions on PostgreSQL by who answered them: the database functions or the services",
    ["call", "by"],
    registry=REGISTRY,
)
