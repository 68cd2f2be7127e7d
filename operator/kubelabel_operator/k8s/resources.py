"""The Kubernetes resources the operator reads and writes."""

from __future__ import annotations

from dataclasses import dataclass

from kubelabel_operator import GROUP, VERSION


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [base]
        if namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)


CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS = Resource("", "v1", "secrets", "Secret")
SERVICES = Resource("", "v1", "services", "Service")
PVCS = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
PODS = Resource("", "v1", "pods", "Pod")
EVENTS = Resource("", "v1", "events", "Event")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
JOBS = Resource("batch", "v1", "jobs", "Job")
CRONJOBS = Resource("batch", "v1", "cronjobs", "CronJob")
INGRESSES = Resource("networking.k8s.io", "v1", "ingresses", "Ingress")
PDBS = Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget")
NETWORKPOLICIES = Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy")
PROJECTS = Resource(GROUP, VERSION, "labelingprojects", "LabelingProject")
STORAGES = Resource(GROUP, VERSION, "storageconnections", "StorageConnection")
MLBACKENDS = Resource(GROUP, VERSION, "mlbackends", "MLBackend")

BY_KIND: dict[str, Resource] = {
    r.kind: r
    for r in (CONFIGMAPS, SECRETS, SERVICES, PVCS, PODS, DEPLOYMENTS, JOBS, CRONJOBS, INGRESSES, PDBS, NETWORKPOLICIES)
    + (PROJECTS, STORAGES, MLBACKENDS)
}


def for_object(body: dict[str, object]) -> Resource:
    return BY_KIND[str(body["kind"])]
