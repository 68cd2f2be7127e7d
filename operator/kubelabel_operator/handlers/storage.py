"""StorageConnection handlers."""

from __future__ import annotations

from typing import Any

import kopf

from kubelabel_operator import GROUP, VERSION, metrics
from kubelabel_operator.handlers import pause
from kubelabel_operator.handlers.report import report
from kubelabel_operator.handlers.runtime import Runtime, runtime
from kubelabel_operator.k8s import ApiError
from kubelabel_operator.k8s.resources import STORAGES
from kubelabel_operator.reconcilers.conditions import now_iso
from kubelabel_operator.reconcilers.storage import reconcile_storage

KIND = "StorageConnection"
RESOURCE = (GROUP, VERSION, "storageconnections")


async def reconcile(rt: Runtime, body: dict[str, Any], logger: kopf.Logger | None = None) -> None:
    if await pause.held(rt, STORAGES, body, logger):
        return
    with metrics.observe(KIND):
        try:
            outcome = await reconcile_storage(
                rt.k8s, body, rt.settings.image, now_iso(), pod_defaults=rt.settings.pod_defaults
            )
            await report(rt.k8s, STORAGES, body, outcome, logger)
        except ApiError as exc:
            raise kopf.TemporaryError(f"Kubernetes API: {exc}", delay=5) from exc


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
async def storage_changed(body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    await reconcile(runtime(memo), dict(body), logger)


@kopf.on.event(*RESOURCE)
async def pause_changed(type: str | None, body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    await pause.on_event(runtime(memo), type, dict(body), reconcile, logger)
