"""Domain events (Label Studio's webhook actions), published from the services that cause them.

Services call `publish()` inside their transaction, so an event exists exactly when the
change it describes was committed. Subscribers (webhooks, ML training triggers, export
storages) register with `subscribe()` when their package is imported by the app.

Most projects have no webhook, model or export storage, and annotations are published on
every submission: a subscriber may name the actions it handles and a `listeners` query (bind
parameter `project_id`) that finds a row when it has someone to tell. One statement asks all
of those at once, and only subscribers with listeners run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, exists, false, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.visitors import replacement_traverse

log = logging.getLogger(__name__)

Subscriber = Callable[[Session, int, str, dict[str, Any]], None]


@dataclass(frozen=True, eq=False)
class _Subscription:
    handler: Subscriber
    actions: frozenset[str] | None
    listeners: Select[Any] | None


_subscriptions: list[_Subscription] = []


def subscribe(
    subscriber: Subscriber, *, actions: Iterable[str] | None = None, listeners: Select[Any] | None = None
) -> Subscriber:
    if all(s.handler is not subscriber for s in _subscriptions):
        wanted = frozenset(actions) if actions is not None else None
        _subscriptions.append(_Subscription(subscriber, wanted, listeners))
    return subscriber


def unsubscribe(subscriber: Subscriber) -> None:
    _subscriptions[:] = [s for s in _subscriptions if s.handler is not subscriber]


def _interested(*actions: str) -> list[_Subscription]:
    return [s for s in list(_subscriptions) if s.actions is None or not s.actions.isdisjoint(actions)]


@cache
def _presence(queries: tuple[Select[Any], ...]) -> Select[Any]:
    return select(*(exists(q) for q in queries))


def any_listener(actions: Iterable[str], project_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """SQL that is true when publishing any of `actions` in the project `project_id` (a column) runs a subscriber.

    For a statement that decides by itself whether an event would have anyone to tell (the
    labeling loop's PostgreSQL path hands those cases to the services, which publish).
    """
    interested = _interested(*actions)
    if any(s.listeners is None for s in interested):
        return true()

    def to_column(element: Any) -> Any:
        return project_id if isinstance(element, BindParameter) and element.key == "project_id" else None

    queries = [replacement_traverse(s.listeners, {}, to_column) for s in interested]
    return or_(false(), *(exists(q) for q in queries))


def publish(session: Session, project_id: int, action: str, **objects: Any) -> None:
    """Tell every subscriber that `action` happened in `project_id` (objects: ORM rows or ids)."""
    interested = _interested(action)
    checked = [s for s in interested if s.listeners is not None]
    present: set[int] = set()
    if checked:
        found = session.execute(_presence(tuple(s.listeners for s in checked)), {"project_id": project_id}).one()
        present = {id(s) for s, yes in zip(checked, found, strict=True) if yes}
    for subscription in interested:
        if subscription.listeners is None or id(subscription) in present:
            subscription.handler(session, project_id, action, objects)
