"""LabelingProject handlers."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from kubelabel_operator import GROUP, VERSION, metrics
from kubelabel_operator.handlers.report import report
from kubelabel_operator.handlers.runtime import Runtime, runtime
from kubelabel_operator.k8s import ApiError
from kubelabel_operator.k8s.resources import PROJECTS
from kubelabel_operator.reconcilers.conditions import now_iso
from kubelabel_operator.reconcilers.project import reconcile_project

KIND = "LabelingProject"
RESOURCE = (GROUP, VERSION, "labelingprojects")


async def reconcile(rt: Runtime, body: Any, logger: logging.Logger | None = None) -> None:
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
    await reconcile(runtime(memo), body, logger)
