"""Children's changes move their owner's status: a Deployment turning ready, a sync, backup or restore
Job finishing."""

from __future__ import annotations

from typing import Any

import kopf

from kubelabel_operator import metrics
from kubelabel_operator.builders.backup import BACKUP_COMPONENT, RESTORE_COMPONENT
from kubelabel_operator.builders.meta import MANAGED_BY, PROJECT_LABEL, STORAGE_LABEL
from kubelabel_operator.handlers import pause
from kubelabel_operator.handlers import project as project_handlers
from kubelabel_operator.handlers import storage as storage_handlers
from kubelabel_operator.handlers.report import report
from kubelabel_operator.handlers.runtime import runtime
from kubelabel_operator.k8s.resources import PROJECTS, STORAGES
from kubelabel_operator.reconcilers.conditions import now_iso
from kubelabel_operator.reconcilers.project import refresh_project_status

OURS = {"app.kubernetes.io/managed-by": MANAGED_BY}


@kopf.on.event("apps", "v1", "deployments", labels={**OURS, "app.kubernetes.io/component": "api"})
async def api_deployment_event(type: str | None, body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    rt = runtime(memo)
    meta = body["metadata"]
    name = (meta.get("labels") or {}).get(PROJECT_LABEL)
    project = await rt.k8s.get(PROJECTS, meta["namespace"], name) if name else None
    if project is None or project["metadata"].get("deletionTimestamp") or pause.is_paused(project):
        return
    if type == "DELETED":
        # Someone deleted our Deployment: put it back.
        await project_handlers.reconcile(rt, project, logger)
        return
    with metrics.observe(project_handlers.KIND):
        outcome = await refresh_project_status(rt.k8s, project, dict(body), now_iso())
        await report(rt.k8s, PROJECTS, project, outcome, logger)


@kopf.on.event("batch", "v1", "jobs", labels={**OURS, "app.kubernetes.io/component": "storage-sync"})
async def sync_job_event(type: str | None, body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    rt = runtime(memo)
    meta = body["metadata"]
    name = (meta.get("labels") or {}).get(STORAGE_LABEL)
    storage = await rt.k8s.get(STORAGES, meta["namespace"], name) if name else None
    if storage is None or storage["metadata"].get("deletionTimestamp"):
        return
    await storage_handlers.reconcile(rt, storage, logger)


@kopf.on.event("batch", "v1", "jobs", labels={**OURS, "app.kubernetes.io/component": kopf.PRESENT})
async def project_job_event(type: str | None, body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """A backup Job finishing moves status.lastBackup; a restore Job finishing lets the API server start."""
    meta = body["metadata"]
    labels = meta.get("labels") or {}
    if labels.get("app.kubernetes.io/component") not in (BACKUP_COMPONENT, RESTORE_COMPONENT):
        return
    conditions = (body.get("status") or {}).get("conditions") or []
    if type in (None, "DELETED") or not any(
        c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions
    ):
        # Still running or gone; or listed at the operator's start (None), when every project is
        # reconciled anyway: one reconcile per kept Job of every project would only repeat it.
        return
    rt = runtime(memo)
    name = labels.get(PROJECT_LABEL)
    project = await rt.k8s.get(PROJECTS, meta["namespace"], name) if name else None
    if project is None or project["metadata"].get("deletionTimestamp") or pause.is_paused(project):
        return
    await project_handlers.reconcile(rt, project, logger)
