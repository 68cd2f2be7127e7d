"""Operator start and stop: settings, login, clients, metrics server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from kubelabel_operator import metrics
from kubelabel_operator.handlers import admission, mlbackend, periodic, project, storage
from kubelabel_operator.handlers.runtime import Runtime
from kubelabel_operator.k8s import K8s, load_connection
from kubelabel_operator.reconcilers import project_api
from kubelabel_operator.settings import get_settings

_metrics_started = False


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    """The operator's own credentials, read at call time (kopf re-calls this on 401)."""
    conn = load_connection(get_settings().kubeconfig)
    token = conn.bearer()
    return kopf.ConnectionInfo(
        server=conn.server,
        ca_path=conn.ca_path,
        insecure=conn.insecure,
        scheme="Bearer" if token else None,
        token=token,
        certificate_path=conn.cert_path,
        private_key_path=conn.key_path,
        default_namespace=conn.default_namespace,
    )


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    global _metrics_started
    config = get_settings()
    # One line per HTTP call is noise at INFO (and the project API's URLs are not news).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Nor one line per admission review (the operator's own metadata patches pass through it too).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    settings.persistence.finalizer = config.finalizer
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kubelabel.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kubelabel.io", key="last-handled-configuration"
    )
    settings.peering.name = config.peering_name
    # Named namespaces: no scan of namespaces (nor of CRDs, Kopf couples both; they are read at start).
    settings.scanning.disabled = config.namespaced
    settings.posting.enabled = config.post_events
    settings.posting.level = logging.INFO
    # Long-idle watches through load balancers can stall silently: bound them.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.execution.max_workers = 4
    admission.configure(settings, config)
    memo.runtime = Runtime(
        k8s=K8s(load_connection(config.kubeconfig)),
        http=project_api.http_client(config.http_timeout_seconds),
        settings=config,
    )
    rt = memo.runtime
    memo.periodic = asyncio.create_task(
        periodic.run_forever(
            rt,
            [
                ("LabelingProject", "resync", config.resync_interval_seconds, project.reconcile),
                ("LabelingProject", "stats", config.stats_interval_seconds, periodic.poll_stats),
                ("LabelingProject", "rollout", project.ROLLOUT_CHECK_SECONDS, project.rollout_check),
                ("StorageConnection", "resync", config.resync_interval_seconds, storage.reconcile),
                ("MLBackend", "health", config.ml_check_interval_seconds, _health_check),
            ],
        ),
        name="kubelabel-periodic",
    )
    if config.metrics_enabled and not _metrics_started:
        metrics.serve(config.metrics_host, config.metrics_port)
        _metrics_started = True
        logger.info("metrics on %s:%s/metrics", config.metrics_host, config.metrics_port)


async def _health_check(rt: Runtime, body: dict[str, Any]) -> None:
    if periodic.health_due(body):
        await mlbackend.reconcile(rt, body)


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    task: asyncio.Task[None] | None = getattr(memo, "periodic", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    runtime: Runtime | None = getattr(memo, "runtime", None)
    if runtime is not None:
        await runtime.k8s.aclose()
        await runtime.http.aclose()
