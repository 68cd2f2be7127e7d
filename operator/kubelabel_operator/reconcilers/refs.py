"""Lookups of objects a spec refers to; a missing one blocks the reconcile with a named reason."""

from __future__ import annotations

import base64
from typing import Any

from kubelabel_operator.k8s import K8s
from kubelabel_operator.k8s.resources import CONFIGMAPS, PROJECTS, SECRETS
from kubelabel_operator.models.common import SecretKeyRef
from kubelabel_operator.models.labeling_project import LabelingProjectSpec
from kubelabel_operator.reconcilers.outcome import Blocked


async def require_secret(k8s: K8s, namespace: str, name: str, key: str | None = None) -> dict[str, Any]:
    secret = await k8s.get(SECRETS, namespace, name)
    if secret is None:
        raise Blocked("SecretMissing", f"Secret {name!r} not found in namespace {namespace!r}")
    if key is not None and key not in (secret.get("data") or {}) and key not in (secret.get("stringData") or {}):
        raise Blocked("SecretKeyMissing", f"Secret {name!r} has no key {key!r}")
    return secret


def secret_value(secret: dict[str, Any], key: str) -> str | None:
    """Decoded value of one key. Callers must never log it."""
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key])
    raw = (secret.get("data") or {}).get(key)
    return base64.b64decode(raw).decode() if raw is not None else None


async def label_config(k8s: K8s, namespace: str, spec: LabelingProjectSpec) -> str:
    ref = spec.label_config.config_map_key_ref
    if ref is None:
        assert spec.label_config.inline is not None
        return spec.label_config.inline
    cm = await k8s.get(CONFIGMAPS, namespace, ref.name)
    if cm is None:
        raise Blocked("ConfigMapMissing", f"ConfigMap {ref.name!r} (labelConfig) not found in {namespace!r}")
    value = (cm.get("data") or {}).get(ref.key)
    if value is None:
        raise Blocked("ConfigMapKeyMissing", f"ConfigMap {ref.name!r} has no key {ref.key!r}")
    return str(value)


def project_secret_refs(spec: LabelingProjectSpec) -> list[SecretKeyRef]:
    """The Secret keys a project's pods read as env: DSN, Redis URL, webhook signing keys."""
    refs = []
    if spec.database.postgres is not None and spec.database.type == "postgres":
        refs.append(spec.database.postgres.secret_ref)
    if spec.redis is not None:
        refs.append(spec.redis.secret_ref)
    refs += [hook.secret_ref for hook in spec.webhooks if hook.secret_ref is not None]
    return refs


async def project_secrets(k8s: K8s, namespace: str, spec: LabelingProjectSpec) -> list[tuple[str, str, str]]:
    """(Secret, key, value) of every Secret key the pods read (project_secret_refs).

    Read on every reconcile: the hash of these values on the pod template is how a rotated Secret rolls
    the pods. The operator's watch on Secrets (handlers.secrets) reconciles a project as soon as one of
    them changes; the periodic resync is the safety net.
    """
    out = []
    for ref in project_secret_refs(spec):
        secret = await require_secret(k8s, namespace, ref.name, ref.key)
        out.append((ref.name, ref.key, secret_value(secret, ref.key) or ""))
    return out


async def require_project(k8s: K8s, namespace: str, name: str) -> dict[str, Any]:
    project = await k8s.get(PROJECTS, namespace, name)
    if project is None:
        raise Blocked("ProjectMissing", f"LabelingProject {name!r} not found in namespace {namespace!r}")
    return project


def project_spec(project: dict[str, Any]) -> LabelingProjectSpec:
    try:
        return LabelingProjectSpec.model_validate(project.get("spec") or {})
    except ValueError as exc:
        name = project["metadata"]["name"]
        raise Blocked("ProjectInvalid", f"LabelingProject {name!r} has an invalid spec: {exc}") from exc
