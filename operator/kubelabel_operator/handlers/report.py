"""Write a reconcile's outcome: status patch (only when it changed), Events, metrics index."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from kubelabel_operator import metrics
from kubelabel_operator.k8s import ApiError, K8s
from kubelabel_operator.k8s.resources import EVENTS, Resource
from kubelabel_operator.reconcilers.conditions import Event, now_iso
from kubelabel_operator.reconcilers.outcome import Outcome
from kubelabel_operator.settings import get_settings

log = logging.getLogger(__name__)
COMPONENT = "kubelabel-operator"


async def report(
    k8s: K8s, res: Resource, body: dict[str, Any], outcome: Outcome, logger: kopf.Logger | None = None
) -> None:
    meta = body["metadata"]
    # The metrics first: whoever sees the new status (a test, a dashboard next to `kubectl get`)
    # finds the matching gauges on the next scrape.
    _index(res, body, outcome)
    if outcome.changed:
        await k8s.patch_status(res, meta["namespace"], meta["name"], outcome.status)
    for event in outcome.events:
        if get_settings().post_events:
            await _post(k8s, res, meta, event)
        if logger is not None:
            logger.info("%s: %s", event.reason, event.message)
    changed = {k: v for k, v in outcome.children.items() if v != "unchanged"}
    if changed and logger is not None:
        logger.info("children: %s", ", ".join(f"{k} {v}" for k, v in sorted(changed.items())))


async def announce(
    k8s: K8s, res: Resource, meta: dict[str, Any], event: Event, logger: kopf.Logger | None = None
) -> None:
    """One Event on any object (posted when events are enabled) and its log line."""
    if get_settings().post_events:
        await _post(k8s, res, meta, event)
    (logger or log).info("%s/%s %s: %s", res.kind, meta["name"], event.reason, event.message)


async def _post(k8s: K8s, res: Resource, meta: dict[str, Any], event: Event) -> None:
    """An Event on the object, best effort.

    Posted here rather than with kopf.event(): Kopf can post only from its own handlers' tasks,
    and the periodic loop (health checks, resyncs) reports too; there kopf.event() raised.
    """
    now = now_iso()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": res.api_version,
            "kind": res.kind,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "type": event.type,
        "reason": event.reason,
        "message": event.message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await k8s.create(EVENTS, meta["namespace"], body)
    except ApiError as exc:
        log.warning("event %s on %s/%s not posted: %s", event.reason, meta["namespace"], meta["name"], exc)


def _index(res: Resource, body: dict[str, Any], outcome: Outcome) -> None:
    status = outcome.status
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if res.kind == "LabelingProject":
        replicas = ((body.get("spec") or {}).get("server") or {}).get("replicas", 1)
        ready = 1 if outcome.verdict.state == "ready" else 0
        metrics.INDEX.update(res.kind, ns, name, ready=ready, replicas=replicas)
    elif res.kind == "StorageConnection":
        metrics.INDEX.update(
            res.kind,
            ns,
            name,
            syncState=status.get("syncState"),
            duration=status.get("lastSyncDurationSeconds"),
            count=status.get("lastSyncCount"),
        )
    elif res.kind == "MLBackend":
        metrics.INDEX.update(res.kind, ns, name, up=1 if status.get("ready") else 0)
