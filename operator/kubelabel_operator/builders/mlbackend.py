"""Children of a managed MLBackend: Deployment, Service and an optional model PVC."""

from __future__ import annotations

from typing import Any

from kubelabel_operator.builders.meta import (
    BACKEND_LABEL,
    LOG_ON_ERROR,
    Owner,
    container_security_context,
    labels,
    metadata,
    pod_security_context,
    resources,
    selector,
    service_url,
)
from kubelabel_operator.builders.placement import extra_tolerations, place
from kubelabel_operator.models.ml_backend import ManagedBackend, MLBackendSpec
from kubelabel_operator.models.pod import PodSettings

COMPONENT = "ml-backend"
GPU_RESOURCE = "nvidia.com/gpu"


def model_name(backend: str) -> str:
    return f"{backend}-model"


def models_pvc_name(backend: str) -> str:
    return f"{backend}-models"


def _labels(owner: Owner, spec: MLBackendSpec) -> dict[str, str]:
    return labels(spec.project_ref.name, COMPONENT, **{BACKEND_LABEL: owner.name})


def _selector(owner: Owner, spec: MLBackendSpec) -> dict[str, str]:
    return selector(spec.project_ref.name, COMPONENT, **{BACKEND_LABEL: owner.name})


def url(owner: Owner, spec: MLBackendSpec) -> str:
    if spec.external is not None:
        return spec.external.url.rstrip("/")
    assert spec.managed is not None
    return service_url(model_name(owner.name), owner.namespace, spec.managed.port)


def _managed(spec: MLBackendSpec) -> ManagedBackend:
    assert spec.managed is not None, "only managed backends have children"
    return spec.managed


def _container_resources(managed: ManagedBackend) -> dict[str, Any]:
    out = resources(managed.resources, {"cpu": "250m", "memory": "512Mi"}, {"memory": "2Gi"})
    if managed.gpu:
        # Extended resources are set as limits; the scheduler copies them to requests.
        out.setdefault("limits", {})[GPU_RESOURCE] = str(managed.gpu)
    return out


def deployment(
    owner: Owner, spec: MLBackendSpec, default_image: str, pod_defaults: PodSettings | None = None
) -> dict[str, Any]:
    managed = _managed(spec)
    mount_path = managed.model_volume.mount_path if managed.model_volume else "/models"
    if managed.model_volume is None:
        models_volume: dict[str, Any] = {"name": "models", "emptyDir": {}}
    else:
        claim = managed.model_volume.existing_claim or models_pvc_name(owner.name)
        models_volume = {"name": "models", "persistentVolumeClaim": {"claimName": claim}}
    probe = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 5}
    container: dict[str, Any] = {
        "name": "model",
        "image": managed.image or default_image,
        "imagePullPolicy": "IfNotPresent",
        "command": managed.command or ["kubelabel"],
        "args": managed.args
        if managed.args is not None
        else ["model-server", "--host", "0.0.0.0", "--port", str(managed.port)],
        "ports": [{"name": "http", "containerPort": managed.port, "protocol": "TCP"}],
        "env": [
            {"name": "MODEL_DIR", "value": mount_path},
            *[{"name": e.name, "value": e.value} for e in managed.env],
        ],
        "livenessProbe": {**probe, "failureThreshold": 6},
        "readinessProbe": {**probe, "failureThreshold": 3},
        "resources": _container_resources(managed),
        "securityContext": container_security_context(),
        "terminationMessagePolicy": LOG_ON_ERROR,
        "volumeMounts": [{"name": "models", "mountPath": mount_path}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [models_volume, {"name": "tmp", "emptyDir": {}}],
    }
    template = place({"metadata": {"labels": _labels(owner, spec)}, "spec": pod_spec}, spec.pod, pod_defaults)
    if managed.gpu:
        extra_tolerations(template, [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}])
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(model_name(owner.name), owner, _labels(owner, spec)),
        "spec": {
            "replicas": managed.replicas,
            "selector": {"matchLabels": _selector(owner, spec)},
            "template": template,
        },
    }


def service(owner: Owner, spec: MLBackendSpec) -> dict[str, Any]:
    managed = _managed(spec)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(model_name(owner.name), owner, _labels(owner, spec)),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(owner, spec),
            "ports": [{"name": "http", "port": managed.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def models_pvc(owner: Owner, spec: MLBackendSpec) -> dict[str, Any] | None:
    managed = _managed(spec)
    vol = managed.model_volume
    if vol is None or vol.existing_claim:
        return None
    body: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": vol.size}}}
    if vol.storage_class_name:
        body["storageClassName"] = vol.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(models_pvc_name(owner.name), owner, _labels(owner, spec)),
        "spec": body,
    }
