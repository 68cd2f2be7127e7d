"""Domain events (Label Studio's webhook actions), published from the services that cause them.

Services call `publish()` inside their transaction, so an event exists exactly when the
change it describes was committed. Subscribers (webhooks, ML training triggers, export
storages) register with `subscribe()` when their package is imported by the app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

Subscriber = Callable[[Session, int, str, dict[str, Any]], None]
_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> Subscriber:
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)
    return subscriber


def publish(session: Session, project_id: int, action: str, **objects: Any) -> None:
    """Tell every subscriber that `action` happened in `project_id` (objects: ORM rows or ids)."""
    for subscriber in list(_subscribers):
        subscriber(session, project_id, action, objects)
