"""MLBackend handlers: reconcile, periodic health check, unregister on deletion (the only finalizer)."""

from __future__ import annotations

from typing import Any

import kopf

from kubelabel_operator import GROUP, VERSION, metrics
from kubelabel_operator.handlers import pause
from kubelabel_operator.handlers.report import report
from kubelabel_operator.handlers.runtime import Runtime, runtime
from kubelabel_operator.k8s import ApiError
from kubelabel_operator.k8s.resources import MLBACKENDS
from kubelabel_operator.reconcilers.conditions import now_iso
from kubelabel_operator.reconcilers.mlbackend import reconcile_mlbackend, unregister

KIND = "MLBackend"
RESOURCE = (GROUP, VERSION, "mlbackends")


async def reconcile(rt: Runtime, body: dict[str, Any], logger: kopf.Logger | None = None) -> None:
    if await pause.held(rt, MLBACKENDS, body, logger):
        return
    with metrics.observe(KIND):
        try:
            outcome = await reconcile_mlbackend(
                rt.k8s,
                rt.http,
                body,
                rt.settings.image,
                rt.settings.api_url_template,
                now_iso(),
                rt.settings.pod_defaults,
            )
            await report(rt.k8s, MLBACKENDS, body, outcome, logger)
        except ApiError as exc:
            raise kopf.TemporaryError(f"Kubernetes API: {exc}", delay=5) from exc


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
async def mlbackend_changed(body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    await reconcile(runtime(memo), dict(body), logger)


@kopf.on.delete(*RESOURCE)
async def mlbackend_deleted(body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """The registration lives in the project's database, outside Kubernetes: remove it (best effort)."""
    rt = runtime(memo)
    result = await unregister(rt.k8s, rt.http, dict(body), rt.settings.api_url_template)
    logger.info("ML backend %s", result)


@kopf.on.event(*RESOURCE)
async def pause_changed(type: str | None, body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    await pause.on_event(runtime(memo), type, dict(body), reconcile, logger)
