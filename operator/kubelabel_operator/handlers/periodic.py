"""Level-based work on a clock: resyncs, project stats polls, ML backend health checks.

One loop for the whole operator instead of Kopf timers: a Kopf timer makes Kopf put a finalizer
on every object, and deleting a project must never wait for the operator. The loop works on the
objects Kopf's watches have shown (so it follows the same namespaces), reading each fresh.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from kubelabel_operator import GROUP, VERSION, metrics
from kubelabel_operator.handlers import pause
from kubelabel_operator.handlers.runtime import Runtime
from kubelabel_operator.k8s import ApiError
from kubelabel_operator.k8s.resources import BY_KIND, PROJECTS
from kubelabel_operator.reconcilers import project_api

log = logging.getLogger(__name__)
Key = tuple[str, str, str]  # kind, namespace, name
Work = Callable[[Runtime, dict[str, Any]], Awaitable[None]]


class Schedule:
    """Objects the watches have seen, and when each kind of work is next due for each."""

    def __init__(self) -> None:
        self.known: set[Key] = set()
        self.due: dict[tuple[Key, str], float] = {}

    def seen(self, kind: str, body: Any, event_type: str | None) -> None:
        meta = body.get("metadata", {})
        key = (kind, meta.get("namespace", ""), meta.get("name", ""))
        if event_type == "DELETED":
            metrics.INDEX.forget(*key)  # its gauges vanish from the next scrape
            self.known.discard(key)
            for due_key in [k for k in self.due if k[0] == key]:
                del self.due[due_key]
        else:
            self.known.add(key)

    def take_due(self, kind: str, work: str, interval: float, now: float) -> list[Key]:
        out = []
        for key in [k for k in self.known if k[0] == kind]:
            due = self.due.setdefault((key, work), now + interval)
            if due <= now:
                out.append(key)
                self.due[(key, work)] = now + interval
        return out


SCHEDULE = Schedule()


class PeeringPause(logging.Handler):
    """Whether Kopf has paused this operator for a higher-priority peer.

    Kopf pauses only its own watches and handlers, and says so only in its peering log; this loop
    reads that log and waits too (a paused operator's resyncs fought the active one's on a real cluster).
    """

    def __init__(self) -> None:
        super().__init__()
        self.paused = False

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Pausing "):  # in favour of a higher priority, or all at the same one
            self.paused = True
        elif message.startswith("Resuming "):
            self.paused = False


PEERING = PeeringPause()
_peering_log = logging.getLogger("kopf._core.engines.peering")
_peering_log.addHandler(PEERING)
_peering_log.setLevel(logging.INFO)  # its pause/resume lines are INFO: heard even under --quiet


@kopf.on.event(GROUP, VERSION, "labelingprojects")
def _project_seen(type: str | None, body: kopf.Body, **_: Any) -> None:
    SCHEDULE.seen("LabelingProject", body, type)


@kopf.on.event(GROUP, VERSION, "storageconnections")
def _storage_seen(type: str | None, body: kopf.Body, **_: Any) -> None:
    SCHEDULE.seen("StorageConnection", body, type)


@kopf.on.event(GROUP, VERSION, "mlbackends")
def _mlbackend_seen(type: str | None, body: kopf.Body, **_: Any) -> None:
    SCHEDULE.seen("MLBackend", body, type)


async def poll_stats(rt: Runtime, body: dict[str, Any]) -> None:
    """Task and annotation counts from the project's own API; a failure only waits for the next poll."""
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    base = project_api.api_url(rt.settings.api_url_template, ns, name)
    try:
        token = await project_api.admin_token(rt.k8s, ns, name)
        stats = await project_api.project_stats(rt.http, base, token)
    except (project_api.ProjectApiError, ValueError, KeyError, TypeError) as exc:
        log.debug("stats of %s/%s not available: %s", ns, name, exc)
        return
    metrics.INDEX.update("LabelingProject", ns, name, **stats)
    current = body.get("status") or {}
    if any(current.get(k) != v for k, v in stats.items()):
        await rt.k8s.patch_status(PROJECTS, ns, name, stats)


def health_due(body: dict[str, Any]) -> bool:
    """Each backend is checked at its own spec.healthCheckIntervalSeconds."""
    interval = float((body.get("spec") or {}).get("healthCheckIntervalSeconds") or 30)
    last = (body.get("status") or {}).get("lastHealthCheck")
    if not last:
        return True
    then = datetime.datetime.fromisoformat(str(last).replace("Z", "+00:00"))
    return (datetime.datetime.now(datetime.UTC) - then).total_seconds() >= interval


async def _run(rt: Runtime, key: Key, work: Work, limit: asyncio.Semaphore) -> None:
    kind, ns, name = key
    async with limit:
        try:
            body = await rt.k8s.get(BY_KIND[kind], ns, name)
            if body is None or body["metadata"].get("deletionTimestamp") or pause.is_paused(body):
                return
            await work(rt, body)
        except (ApiError, kopf.TemporaryError) as exc:
            log.warning("periodic %s of %s/%s: %s", work.__name__, ns, name, exc)
        except Exception:  # noqa: BLE001 - one object's failure must not stop the loop
            log.exception("periodic %s of %s/%s failed", work.__name__, ns, name)


async def run_forever(rt: Runtime, jobs: list[tuple[str, str, float, Work]], tick: float = 1.0) -> None:
    """jobs: (kind, work name, interval seconds, coroutine)."""
    limit = asyncio.Semaphore(16)
    PEERING.paused = False  # a new run: Kopf decides afresh
    while True:
        now = time.monotonic()
        if PEERING.paused:
            await asyncio.sleep(tick)
            continue
        tasks = [
            _run(rt, key, work, limit)
            for kind, name, interval, work in jobs
            for key in SCHEDULE.take_due(kind, name, interval, now)
        ]
        if tasks:
            await asyncio.gather(*tasks)
        await asyncio.sleep(max(0.05, tick - (time.monotonic() - now)))
