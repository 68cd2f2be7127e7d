"""Enqueue ML jobs inside the caller's transaction (handlers: api_server.ml.jobs)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api_server.jobs import enqueue

PREDICT, EVENT, TRAIN, SETUP = "ml.predict", "ml.event", "ml.train", "ml.setup"
ML_MAX_ATTEMPTS = 3


def ranges_of(ids: list[int]) -> list[list[int]]:
    """Ids as inclusive [first, last] runs (compact job payloads for large imports)."""
    runs: list[list[int]] = []
    for i in sorted(set(ids)):
        if runs and runs[-1][1] + 1 == i:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs


def ids_of(ranges: list[list[int]]) -> list[int]:
    return [i for first, last in ranges for i in range(int(first), int(last) + 1)]


def enqueue_predict(
    session: Session, backend_id: int, task_id_ranges: list[list[int]] | None, *, only_unlabeled: bool = True
) -> None:
    payload = {"backend_id": backend_id, "task_id_ranges": task_id_ranges, "only_unlabeled": only_unlabeled}
    enqueue(session, PREDICT, payload, max_attempts=ML_MAX_ATTEMPTS)


def enqueue_event(session: Session, payload: dict[str, Any]) -> None:
    enqueue(session, EVENT, payload, max_attempts=ML_MAX_ATTEMPTS)


def enqueue_train(session: Session, backend_id: int) -> None:
    enqueue(session, TRAIN, {"backend_id": backend_id}, max_attempts=ML_MAX_ATTEMPTS)


def enqueue_setup(session: Session, backend_id: int) -> None:
    enqueue(session, SETUP, {"backend_id": backend_id}, max_attempts=ML_MAX_ATTEMPTS)
