"""Names, labels, owner references and the pod hardening every child shares."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kubelabel_operator import API_VERSION

MANAGED_BY = "kubelabel-operator"
PROJECT_LABEL = "kubelabel.io/project"
STORAGE_LABEL = "kubelabel.io/storage"
BACKEND_LABEL = "kubelabel.io/mlbackend"
CONFIG_HASH_ANNOTATION = "kubelabel.io/config-hash"
SECRETS_HASH_ANNOTATION = "kubelabel.io/secrets-hash"
PAUSED_ANNOTATION = "kubelabel.io/paused"
# On a pod template: the keys of the labels and annotations that came from spec.pod (or its defaults).
POD_METADATA_ANNOTATION = "kubelabel.io/pod-metadata"
SYNC_REQUEST_ANNOTATION = "kubelabel.io/sync-request"
# A Retain project's SQLite PVC: never owned by the project (so no deletion of the project reaches it),
# labelled with the project's name so a new project finds it, and the uid of the project using it.
RETAINED_FROM_LABEL = "kubelabel.io/retained-from"
RETAINED_UID_ANNOTATION = "kubelabel.io/retained-from-uid"
RUN_AS = 10001
API_PORT = 8080
# A container that fails without writing /dev/termination-log gets its last log lines as its
# termination message, which the operator quotes in its owner's conditions (reconcilers.pods).
LOG_ON_ERROR = "FallbackToLogsOnError"


@dataclass(frozen=True)
class Owner:
    """The custom resource that owns a child (enough of it for an ownerReference)."""

    kind: str
    name: str
    namespace: str
    uid: str

    @classmethod
    def from_body(cls, body: Any) -> Owner:
        meta = body["metadata"]
        return cls(kind=body["kind"], name=meta["name"], namespace=meta["namespace"], uid=meta.get("uid", ""))

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def labels(project: str, component: str, **extra: str) -> dict[str, str]:
    """The operator's labels. Never app.kubernetes.io/instance: Argo CD tracks its own objects by it."""
    out = {
        "app.kubernetes.io/name": "kubelabel",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        PROJECT_LABEL: project,
    }
    out.update(extra)
    return out


def selector(project: str, component: str, **extra: str) -> dict[str, str]:
    out = {"app.kubernetes.io/name": "kubelabel", "app.kubernetes.io/component": component, PROJECT_LABEL: project}
    out.update(extra)
    return out


def metadata(
    name: str, owner: Owner, child_labels: dict[str, str], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": child_labels,
        "ownerReferences": [owner.reference()],
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def content_hash(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def job_pod_template(
    pod_labels: dict[str, str], container: dict[str, Any], volumes: list[dict[str, Any]]
) -> dict[str, Any]:
    """The pod of a run-once Job (sync, backup, restore): no restarts, no API credentials, non-root."""
    return {
        "metadata": {"labels": pod_labels},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": pod_security_context(),
            "containers": [container],
            "volumes": volumes,
        },
    }


def resources(spec: Any, default_requests: dict[str, str], default_limits: dict[str, str]) -> dict[str, Any]:
    """Container resources from a ResourceRequirements model (or the defaults when unset)."""
    if spec is None:
        return {"requests": dict(default_requests), "limits": dict(default_limits)}
    out: dict[str, Any] = {}
    if spec.requests:
        out["requests"] = dict(spec.requests)
    if spec.limits:
        out["limits"] = dict(spec.limits)
    return out


def service_url(service: str, namespace: str, port: int) -> str:
    return f"http://{service}.{namespace}.svc:{port}"
