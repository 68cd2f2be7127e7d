"""Write a reconcile's outcome: status patch (only when it changed), Events, metrics index."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from kubelabel_operator import metrics
from kubelabel_operator.k8s import K8s
from kubelabel_operator.k8s.resources import Resource
from kubelabel_operator.reconcilers.outcome import Outcome


async def report(
    k8s: K8s, res: Resource, body: dict[str, Any], outcome: Outcome, logger: logging.Logger | None = None
) -> None:
    meta = body["metadata"]
    # The metrics first: whoever sees the new status (a test, a dashboard next to `kubectl get`)
    # finds the matching gauges on the next scrape.
    _index(res, meta, outcome)
    if outcome.changed:
        await k8s.patch_status(res, meta["namespace"], meta["name"], outcome.status)
    ref = {"apiVersion": res.api_version, "kind": res.kind, "metadata": meta}
    for event in outcome.events:
        # Posting is a no-op when settings.posting.enabled is off (e.g. against a mock API).
        kopf.event(ref, type=event.type, reason=event.reason, message=event.message)
        if logger is not None:
            logger.info("%s: %s", event.reason, event.message)
    changed = {k: v for k, v in outcome.children.items() if v != "unchanged"}
    if changed and logger is not None:
        logger.info("children: %s", ", ".join(f"{k} {v}" for k, v in sorted(changed.items())))


def _index(res: Resource, meta: dict[str, Any], outcome: Outcome) -> None:
    status = outcome.status
    ns, name = meta["namespace"], meta["name"]
    if res.kind == "LabelingProject":
        metrics.INDEX.update(res.kind, ns, name, ready=1 if outcome.verdict.state == "ready" else 0)
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
