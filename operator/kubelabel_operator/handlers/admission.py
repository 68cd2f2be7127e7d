"""The validating admission webhook for LabelingProject (Kopf's webhook server, managed configuration)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import kopf

from kubelabel_operator.handlers.project import RESOURCE
from kubelabel_operator.handlers.runtime import runtime
from kubelabel_operator.handlers.webhook_server import build_server
from kubelabel_operator.reconcilers.admission import Refused, review_project
from kubelabel_operator.settings import OperatorSettings, get_settings


# The failure policy is part of the handler's registration, so it is read when the handlers are imported.
@kopf.on.validate(  # type: ignore[arg-type]  # Kopf passes `old` to webhooks; WebhookFn does not list it
    *RESOURCE,
    operations=["CREATE", "UPDATE"],
    ignore_failures=get_settings().webhook_failure_policy == "Ignore",
)
async def validate_project(body: kopf.Body, old: kopf.Body | None, memo: Any, warnings: list[str], **_: Any) -> None:
    try:
        warnings.extend(await review_project(runtime(memo).k8s, dict(body), dict(old) if old else None))
    except Refused as exc:
        raise kopf.AdmissionError(str(exc), code=422) from None


async def _idle(fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
    # Kopf refuses to start with admission handlers and no server: this one never listens.
    await asyncio.Event().wait()
    yield kopf.WebhookClientConfig()


def configure(settings: kopf.OperatorSettings, config: OperatorSettings) -> None:
    """Serve the webhook and keep its configuration in the cluster, or serve nothing when it is off."""
    if not config.webhook_enabled:
        settings.admission.server = _idle
        settings.admission.managed = None
        return
    settings.admission.server = build_server(config)
    settings.admission.managed = config.webhook_configuration_name
