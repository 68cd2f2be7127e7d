"""Admission of a LabelingProject: refuse at `kubectl apply` what its reconcile would fail on later.

The label config goes through the API server's own validator (api_server.labelconfig), the one its
pods run at start; the spec through the operator's own model. What depends on other objects that
may be applied just after the project (a ConfigMap, Secrets) never refuses it: a ConfigMap that
can be read is checked, one that cannot gives a warning, and the reconcile reports the rest.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ValidationError

from api_server.labelconfig.parser import LabelConfigError, parse
from kubelabel_operator.k8s import ApiError, K8s
from kubelabel_operator.models.labeling_project import LabelingProjectSpec
from kubelabel_operator.reconcilers import refs
from kubelabel_operator.reconcilers.outcome import Blocked

# Well inside the API server's 30 s for a webhook answer: a slow read admits with a warning instead.
CONFIG_MAP_READ_SECONDS = 10.0


class Refused(Exception):
    """The project must not be admitted; the message names the field, tag or attribute at fault."""


def check_label_config(xml: str, where: str) -> None:
    try:
        parse(xml)
    except LabelConfigError as exc:
        raise Refused(f"{where}: {'; '.join(exc.errors)}") from None


def check_spec(spec: dict[str, Any]) -> LabelingProjectSpec:
    try:
        return LabelingProjectSpec.model_validate(spec)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = ".".join(["spec", *map(str, error["loc"])])
            problems.append(f"{path}: {error['msg'].removeprefix('Value error, ')}")
        raise Refused("; ".join(problems)) from None


def needs_review(body: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """Only a new or changed spec: metadata-only updates (finalizers, Kopf's annotations) always pass,
    so a project admitted before (or while the webhook was off) can still be handled and deleted."""
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return old is None or (old.get("spec") or {}) != (body.get("spec") or {})


async def review_project(k8s: K8s, body: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """Raise Refused for a project that must not be admitted; return warnings for the user."""
    if not needs_review(body, old):
        return []
    spec = check_spec(body.get("spec") or {})
    if spec.label_config.inline is not None:
        check_label_config(spec.label_config.inline, "spec.labelConfig.inline")
        return []
    ref = spec.label_config.config_map_key_ref
    assert ref is not None
    where = f"spec.labelConfig.configMapKeyRef (ConfigMap {ref.name!r}, key {ref.key!r})"
    namespace = (body.get("metadata") or {}).get("namespace") or ""
    try:
        xml = await asyncio.wait_for(refs.label_config(k8s, namespace, spec), CONFIG_MAP_READ_SECONDS)
    except Blocked as exc:
        return [f"{where} was not checked: {exc.message}; the project waits for it"]
    except ApiError as exc:
        return [f"{where} was not checked: the operator could not read it ({exc})"]
    except TimeoutError:
        return [f"{where} was not checked: the operator could not read it within {CONFIG_MAP_READ_SECONDS:g} s"]
    check_label_config(xml, where)
    return []
