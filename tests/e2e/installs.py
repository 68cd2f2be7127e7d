"""The install paths on the real cluster: the Helm chart rendered, kustomize output moved aside, the
operator started from an install's Deployment, and volumes for the projects' claims.

Tests share one cluster, so an install never takes the shipped cluster-scoped names: the chart gets
a release name of its own, kustomize output gets a prefix on its cluster-scoped objects (and every
reference to them). What runs is otherwise exactly what a user applies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from operator_process import OperatorProcess
from realcluster import ROOT, Cluster, Kubectl, docs_of

from tests.support.apiserver import TEST_EGRESS_ALLOW
from tests.support.net import free_port

CHART = ROOT / "charts" / "kubelabel"
EXAMPLE_01 = ROOT / "manifests" / "examples" / "01-minimal-project.yaml"
RENAMED_KINDS = {"ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}
WEBHOOK_KINDS = {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}


def render_chart(values: dict[str, Any], release: str, namespace: str) -> list[dict[str, Any]]:
    """What `helm install` applies: the rendered templates, without NOTES.txt and hook objects."""
    import helm_python

    rendered = helm_python.Chart.load(str(CHART)).render(values, name=release, namespace=namespace, is_install=True)
    objects = [d for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt") for d in docs_of(text)]
    return [o for o in objects if "helm.sh/hook" not in (o["metadata"].get("annotations") or {})]


def relocate(objects: list[dict[str, Any]], namespace: str, prefix: str) -> list[dict[str, Any]]:
    """kustomize output moved into `namespace`, its cluster-scoped objects named `prefix-<name>`.

    The Namespace and the CRDs (shared, already on the server) are left out; objects in other named
    namespaces (the namespaced overlay's Roles) stay there; bindings, webhook resourceNames follow.
    """
    moved = []
    renamed = {o["metadata"]["name"] for o in objects if o["kind"] in RENAMED_KINDS}
    home = {o["metadata"].get("namespace") for o in objects if o["kind"] == "Deployment"}

    def new(name: str) -> str:
        return f"{prefix}-{name}" if name in renamed else name

    for obj in objects:
        kind, meta = obj["kind"], obj["metadata"]
        if kind in {"Namespace", "CustomResourceDefinition"}:
            continue
        if kind in RENAMED_KINDS:
            meta["name"] = new(meta["name"])
        elif meta.get("namespace") in home:
            meta["namespace"] = namespace
        if kind in {"RoleBinding", "ClusterRoleBinding"}:
            if obj["roleRef"]["kind"] == "ClusterRole":
                obj["roleRef"]["name"] = new(obj["roleRef"]["name"])
            for subject in obj.get("subjects") or []:
                if subject.get("namespace") in home:
                    subject["namespace"] = namespace
        for rule in obj.get("rules") or [] if kind == "ClusterRole" else []:
            if "resourceNames" in rule:
                rule["resourceNames"] = [new(n) for n in rule["resourceNames"]]
        moved.append(obj)
    return moved


def delete_objects(cluster: Cluster, objects: list[dict[str, Any]]) -> None:
    items = [o for o in objects if o["kind"] not in {"CustomResourceDefinition", "Namespace"}]
    cluster.run(
        "delete",
        "-f",
        "-",
        "--ignore-not-found",
        "--wait=false",
        stdin=json.dumps({"kind": "List", "apiVersion": "v1", "items": items}),
        check=False,
    )


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [o["metadata"]["name"] for o in found])
    return found[0]


def container_env(container: dict[str, Any], namespace: str) -> dict[str, str]:
    """The container's environment as its pod would see it (plain values, the pod's namespace)."""
    env = {}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif (item.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[item["name"]] = namespace
        else:
            raise AssertionError(f"the test cannot resolve {item}")
    return env


def operator_from(
    deployment: dict[str, Any],
    identity: Kubectl,
    log: Path,
    extra_env: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> OperatorProcess:
    """`kubelabel operator` with the Deployment container's args and env, as its pod would run.

    Overridden, because they must point at the test: the kubeconfig (the ServiceAccount's token), the
    metrics and liveness listeners (a free port on 127.0.0.1), the outbound-address allowance, and the
    admission webhook's address (served on 127.0.0.1 for the local kube-apiserver instead of a Service
    nothing routes to).
    """
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "operator", container["args"]
    env = container_env(container, deployment["metadata"]["namespace"])
    env.pop("KUBELABEL_OPERATOR_METRICS_PORT", None)  # OperatorProcess picks a free one
    env.update(
        {
            "KUBELABEL_OPERATOR_METRICS_HOST": "127.0.0.1",
            "KUBELABEL_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{free_port()}/healthz"
            if env.get("KUBELABEL_OPERATOR_LIVENESS_ENDPOINT")
            else "",
            "KUBELABEL_EGRESS_ALLOW": TEST_EGRESS_ALLOW,
        }
    )
    if env.get("KUBELABEL_OPERATOR_WEBHOOK_ENABLED") == "true":
        env.update(
            {
                "KUBELABEL_OPERATOR_WEBHOOK_MODE": "url",
                "KUBELABEL_OPERATOR_WEBHOOK_HOST": "127.0.0.1",
                "KUBELABEL_OPERATOR_WEBHOOK_PORT": str(free_port()),
            }
        )
    env.update(extra_env or {})
    return OperatorProcess(identity, container["args"][1:] if args is None else args, log, env=env)


def example_project(name: str | None = None) -> dict[str, Any]:
    project = docs_of(EXAMPLE_01.read_text())[0]
    if name:
        project["metadata"]["name"] = name
    return project


def children(cluster: Cluster, namespace: str, project: str) -> dict[str, list[str]]:
    """The project's children by kind (what its label selects), for counting duplicates."""
    selector = f"kubelabel.io/project={project}"
    found = {}
    for kind in ("deployments", "services", "configmaps", "secrets", "persistentvolumeclaims"):
        found[kind] = [o["metadata"]["name"] for o in cluster.list(kind, namespace, selector=selector)]
    return found


def refusals(log: str) -> list[str]:
    """The operator's log lines about a request its RBAC refused (Kopf's and its own client's).

    Not an Event refused in a namespace being deleted (the namespace lifecycle's 403, which a
    cluster-wide operator meets when another test's namespace goes away under its projects)."""
    return [
        line
        for line in log.splitlines()
        if ("forbidden" in line.lower() or "Not enough permissions" in line) and "being terminated" not in line
    ]
