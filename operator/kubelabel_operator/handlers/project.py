"""LabelingProject handlers."""

from __future__ import annotations

from typing import Any

import kopf

from kubelabel_operator import GROUP, VERSION, metrics
from kubelabel_operator.handlers import pause
from kubelabel_operator.handlers.report import announce, report
from kubelabel_operator.handlers.runtime import Runtime, runtime
from kubelabel_operator.k8s import ApiError
from kubelabel_operator.k8s.resources import PROJECTS, PVCS
from kubelabel_operator.reconcilers.conditions import Event, now_iso
from kubelabel_operator.reconcilers.data_volume import kept_after_deletion
from kubelabel_operator.reconcilers.project import check_rollout, reconcile_project

KIND = "LabelingProject"
RESOURCE = (GROUP, VERSION, "labelingprojects")
# How often a project that is not Ready has its pods looked at between full reconciles.
ROLLOUT_CHECK_SECONDS = 15.0


async def reconcile(rt: Runtime, body: Any, logger: kopf.Logger | None = None) -> None:
    data = dict(body)
    if await pause.held(rt, PROJECTS, data, logger):
        return
    with metrics.observe(KIND):
        try:
            outcome = await reconcile_project(
                rt.k8s,
                data,
                rt.settings.image,
                now_iso(),
                pod_defaults=rt.settings.pod_defaults,
                network_defaults=rt.settings.network_policy,
                operator_peer=rt.settings.network_policy_operator_peer,
            )
            await report(rt.k8s, PROJECTS, data, outcome, logger)
        except ApiError as exc:
            raise kopf.TemporaryError(f"Kubernetes API: {exc}", delay=5) from exc


async def rollout_check(rt: Runtime, body: dict[str, Any]) -> None:
    """Periodic: a crash loop or an image pull error reaches the status before the next resync."""
    outcome = await check_rollout(rt.k8s, body, now_iso())
    if outcome is not None:
        await report(rt.k8s, PROJECTS, body, outcome)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
async def project_changed(body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    await reconcile(runtime(memo), body, logger)


@kopf.on.event(*RESOURCE)
async def project_deleted(type: str | None, body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """A deleted Retain project: say on its PVC that the data was kept (nothing here keeps it: the PVC
    never had an owner reference, so it stays even when the operator is down at the time)."""
    if type != "DELETED":
        return
    data = dict(body)
    try:
        pvc = await kept_after_deletion(runtime(memo).k8s, data)
    except ApiError as exc:
        logger.warning("could not look up the retained volume: %s", exc)
        return
    if pvc is not None:
        name, pvc_name = data["metadata"]["name"], pvc["metadata"]["name"]
        message = (
            f"LabelingProject {name!r} was deleted; deletionPolicy Retain kept this volume and its data"
            f" (a new project named {name!r}, or with spec.adoptFrom: {name}, takes it over)"
        )
        await announce(runtime(memo).k8s, PVCS, pvc["metadata"], Event("Normal", "Retained", message), logger)
        logger.info("kept PersistentVolumeClaim %s", pvc_name)


@kopf.on.event(*RESOURCE)
async def pause_changed(type: str | None, body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    await pause.on_event(runtime(memo), type, dict(body), reconcile, logger)
