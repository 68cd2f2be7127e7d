"""LabelingProject handlers."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from kubelabel_operator import GROUP, VERSION, metrics
from kubelabel_operator.handlers.report import forget, report
from kubelabel_operator.handlers.runtime import runtime
from kubelabel_operator.k8s import ApiError
from kubelabel_operator.k8s.resources import PROJECTS
from kubelabel_operator.reconcilers import project_api
from kubelabel_operator.reconcilers.conditions import now_iso
from kubelabel_operator.reconcilers.project import reconcile_project
from kubelabel_operator.settings import get_settings

KIND = "LabelingProject"
RESOURCE = (GROUP, VERSION, "labelingprojects")
_settings = get_settings()


async def reconcile(body: Any, memo: Any, logger: logging.Logger) -> None:
    rt = runtime(memo)
    data = dict(body)
    with metrics.observe(KIND):
        try:
            outcome = await reconcile_project(rt.k8s, data, rt.settings.image, now_iso())
            await report(rt.k8s, PROJECTS, data, outcome, logger)
        except ApiError as exc:
            raise kopf.TemporaryError(f"Kubernetes API: {exc}", delay=5) from exc


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
async def project_changed(body: kopf.Body, memo: Any, logger: logging.Logger, **_: Any) -> None:
    await reconcile(body, memo, logger)


@kopf.timer(*RESOURCE, interval=_settings.resync_interval_seconds, initial_delay=_settings.resync_interval_seconds)
async def project_resync(body: kopf.Body, memo: Any, logger: logging.Logger, **_: Any) -> None:
    """Level-based safety net: converge on drift nobody told us about."""
    await reconcile(body, memo, logger)


@kopf.timer(*RESOURCE, interval=_settings.stats_interval_seconds, initial_delay=1.0)
async def project_stats(body: kopf.Body, memo: Any, logger: logging.Logger, **_: Any) -> None:
    """Task and annotation counts from the project's own API; failures only wait for the next poll."""
    rt = runtime(memo)
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    base = project_api.api_url(rt.settings.api_url_template, ns, name)
    try:
        token = await project_api.admin_token(rt.k8s, ns, name)
        stats = await project_api.project_stats(rt.http, base, token)
    except (project_api.ProjectApiError, ApiError, ValueError, KeyError, TypeError) as exc:
        logger.debug("stats of %s/%s not available: %s", ns, name, exc)
        return
    metrics.INDEX.update(KIND, ns, name, **stats)
    current = body.get("status") or {}
    if any(current.get(k) != v for k, v in stats.items()):
        await rt.k8s.patch_status(PROJECTS, ns, name, stats)


@kopf.on.event(*RESOURCE)
def project_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    if type == "DELETED":
        forget(KIND, dict(body))
