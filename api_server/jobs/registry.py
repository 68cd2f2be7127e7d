"""Job handlers by kind, pumps, collectors and maintenance tasks, and what a handler is given to run.

The product's own registrations are all made in one place, api_server/wiring.py, which the API
app and the worker call before they run anything; nothing here registers itself on import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from api_server.settings import Settings


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help (bad payload, target gone)."""


@dataclass(frozen=True)
class JobContext:
    job_id: int
    kind: str
    payload: dict[str, Any]
    attempt: int  # 1 for the first run
    max_attempts: int
    # When the job runs again if this attempt fails (None: this is the last attempt).
    retry_at: datetime | None
    session_factory: sessionmaker[Session]
    settings: Settings

    @property
    def is_last_attempt(self) -> bool:
        return self.retry_at is None


Handler = Callable[[JobContext], None]


@dataclass(frozen=True)
class Registration:
    kind: str
    fn: Handler
    # How long a run may take before another worker assumes it died and runs it again.
    lease_seconds: int | None


_handlers: dict[str, Registration] = {}


def register(kind: str, fn: Handler, *, lease_seconds: int | None = None) -> None:
    """Make `fn` the handler of `kind` (again: idempotent; another function for the kind is an error)."""
    existing = _handlers.get(kind)
    if existing is not None and existing.fn is not fn and existing.fn.__qualname__ != fn.__qualname__:
        raise ValueError(f"job kind {kind!r} already has a handler: {existing.fn.__qualname__}")
    _handlers[kind] = Registration(kind, fn, lease_seconds)


def job_handler(kind: str, *, lease_seconds: int | None = None) -> Callable[[Handler], Handler]:
    """`register` as a decorator (for handlers outside the product's wiring, e.g. tests')."""

    def decorate(fn: Handler) -> Handler:
        register(kind, fn, lease_seconds=lease_seconds)
        return fn

    return decorate


def get(kind: str) -> Registration | None:
    return _handlers.get(kind)


def kinds() -> list[str]:
    return sorted(_handlers)


Maintenance = Callable[[sessionmaker[Session], Settings], int]
_maintenance: list[Maintenance] = []


def maintenance(fn: Maintenance) -> Maintenance:
    """Register hourly upkeep (e.g. purging old history) run by one job runner thread; returns rows touched."""
    if fn not in _maintenance:
        _maintenance.append(fn)
    return fn


def maintenance_tasks() -> list[Maintenance]:
    return list(_maintenance)


class Pump(Protocol):
    """Continuous work run by the job runner's event thread (the webhook delivery engine)."""

    def step(self) -> bool:
        """Do what is due now without blocking on the network; True when there may be more at once."""
        ...

    def idle(self) -> bool:
        """Nothing in flight (burst mode stops when every pump is idle and nothing is due)."""
        ...

    def close(self) -> None: ...


# (session factory, settings, wake: makes the event thread call step() again soon) -> a pump
PumpFactory = Callable[[sessionmaker[Session], Settings, Callable[[], None]], Pump]
_pumps: list[PumpFactory] = []


def pump(factory: PumpFactory) -> PumpFactory:
    """Register a pump: each process that runs jobs builds one and steps it after every fan-out of events."""
    if factory not in _pumps:
        _pumps.append(factory)
    return factory


def pumps() -> list[PumpFactory]:
    return list(_pumps)


Collector = Callable[[sessionmaker[Session]], Any]
_collectors: list[Collector] = []


def collector(factory: Collector) -> Collector:
    """Register a metrics collector (built with the app's session factory; read at scrape time)."""
    if factory not in _collectors:
        _collectors.append(factory)
    return factory


def collectors() -> list[Collector]:
    return list(_collectors)
