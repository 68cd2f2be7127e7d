"""Prometheus metrics of calls to ML backends."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from api_server.metrics import REGISTRY

ML_REQUESTS = Counter(
    "kubelabel_ml_requests_total",
    "Calls to ML backends by endpoint and outcome (ok, timeout, unavailable, http_error, invalid_response, refused)",
    ["endpoint", "outcome"],
    registry=REGISTRY,
)
ML_REQUEST_DURATION = Histogram(
    "kubelabel_ml_request_duration_seconds",
    "Duration of calls to ML backends (with retries)",
    ["endpoint"],
    registry=REGISTRY,
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
ML_PREDICTIONS = Counter(
    "kubelabel_ml_predictions_total", "Predictions stored from ML backends", ["project"], registry=REGISTRY
)
ML_TRAININGS = Counter(
    "kubelabel_ml_trainings_total", "Training runs started on ML backends", ["project", "outcome"], registry=REGISTRY
)


def observe(endpoint: str, outcome: str, seconds: float) -> None:
    # Query strings (GET /versions?project=1) never become label values.
    endpoint = endpoint.split("?", 1)[0]
    ML_REQUESTS.labels(endpoint, outcome).inc()
    ML_REQUEST_DURATION.labels(endpoint).observe(seconds)
