"""Children's changes move their owner's status: a Deployment turning ready, a sync Job finishing."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from kubelabel_operator import metrics
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
async def api_deployment_event(type: str | None, body: kopf.Body, memo: Any, logger: logging.Logger, **_: Any) -> None:
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
async def sync_job_event(type: str | None, body: kopf.Body, memo: Any, logger: logging.Logger, **_: Any) -> None:
    rt = runtime(memo)
    meta = body["metadata"]
    name = (meta.get("labels") or {}).get(STORAGE_LABEL)
    storage = await rt.k8s.get(STORAGES, meta["namespace"], name) if name else None
    if storage is None or storage["metadata"].get("deletionTimestamp"):
        return
    await storage_handlers.reconcile(rt, storage, logger)
