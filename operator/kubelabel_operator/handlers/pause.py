"""`kubelabel.io/paused: "true"` on a LabelingProject, StorageConnection or MLBackend: nothing reconciles it.

No child is created or changed, no status is written (but `status.paused: true`, once, to say so),
the periodic resyncs, stats polls and health checks pass it by. Removing the annotation (an update
Kopf sees) resumes, and clears `status.paused`. Deletion is not paused: an MLBackend's finalizer
still unregisters it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from kubelabel_operator.builders.meta import PAUSED_ANNOTATION
from kubelabel_operator.handlers.runtime import Runtime
from kubelabel_operator.k8s.resources import Resource


def is_paused(body: dict[str, Any]) -> bool:
    annotations = body.get("metadata", {}).get("annotations") or {}
    return str(annotations.get(PAUSED_ANNOTATION, "")).lower() == "true"


async def on_event(
    rt: Runtime,
    event_type: str | None,
    body: dict[str, Any],
    reconcile: Callable[[Runtime, dict[str, Any], kopf.Logger | None], Awaitable[None]],
    logger: kopf.Logger | None = None,
) -> None:
    """Paused or resumed: reconcile once (which marks or unmarks the status, and resumes the work).

    From the raw watch events: Kopf leaves annotations under its storage prefix (kubelabel.io/) out of
    the diffs its update handlers see, so adding or removing this one triggers none of them.
    """
    if event_type in (None, "DELETED") or body["metadata"].get("deletionTimestamp"):
        return  # the initial listing goes through the resume handlers
    if is_paused(body) != bool((body.get("status") or {}).get("paused")):
        await reconcile(rt, body, logger)


async def held(rt: Runtime, res: Resource, body: dict[str, Any], logger: kopf.Logger | None = None) -> bool:
    """True when the object is paused (the caller does nothing more); clears the mark once it is not."""
    meta, status = body["metadata"], body.get("status") or {}
    paused = is_paused(body)
    if paused != bool(status.get("paused")):
        await rt.k8s.patch_status(res, meta["namespace"], meta["name"], {"paused": True if paused else None})
        if logger is not None:
            logger.info("%s: reconciling %s", PAUSED_ANNOTATION, "paused" if paused else "resumed")
    return paused
