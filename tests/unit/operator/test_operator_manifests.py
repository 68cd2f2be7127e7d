"""manifests/base: CRD copies in sync, the operator Deployment and RBAC as the code needs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubelabel_operator.settings import OperatorSettings

ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "manifests" / "base"


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_base_crds_are_copies_of_the_generated_ones() -> None:
    listed = yaml.safe_load((BASE / "crds" / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    for name in listed:
        assert (BASE / "crds" / name).read_text() == (ROOT / "crds" / name).read_text(), (
            f"manifests/base/crds/{name} is stale: kubelabel crds --out manifests/base/crds/"
        )


def test_operator_deployment_is_single_recreate_non_root() -> None:
    (dep,) = load(BASE / "deployment.yaml")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["operator", "--all-namespaces"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    settings = OperatorSettings(**{k.removeprefix("KUBELABEL_OPERATOR_").lower(): v for k, v in env.items()})
    port = int(settings.liveness_endpoint.rsplit(":", 1)[1].split("/")[0])  # type: ignore[union-attr]
    assert container["livenessProbe"]["httpGet"]["port"] == "healthz"
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "metrics": settings.metrics_port,
        "healthz": port,
        "webhook": settings.webhook_port,
    }
    # The admission webhook, called through a Service in the operator's namespace (from the pod's).
    assert settings.webhook_enabled and settings.webhook_mode == "service" and settings.webhook_host == "0.0.0.0"
    (namespace,) = [e for e in container["env"] if e["name"] == "KUBELABEL_OPERATOR_WEBHOOK_SERVICE_NAMESPACE"]
    assert namespace["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def _grants() -> set[tuple[str, str, str]]:
    out = set()
    for doc in load(BASE / "rbac.yaml"):
        if doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == "kubelabel-operator":
            for rule in doc["rules"]:
                for group in rule["apiGroups"]:
                    for res in rule["resources"]:
                        for verb in rule["verbs"]:
                            out.add((group, res, verb))
    return out


def test_rbac_covers_what_the_operator_calls_and_no_secret_writes() -> None:
    grants = _grants()
    needed = {
        ("kubelabel.io", "labelingprojects", "watch"),
        ("kubelabel.io", "labelingprojects/status", "patch"),
        ("kubelabel.io", "mlbackends", "patch"),  # the finalizer
        ("", "secrets", "get"),
        ("", "secrets", "create"),
        # The Secret watch: a change of a Secret a resource names reconciles it at once.
        ("", "secrets", "list"),
        ("", "secrets", "watch"),
        ("networking.k8s.io", "networkpolicies", "delete"),
        ("", "configmaps", "patch"),
        ("", "pods", "list"),
        ("apps", "deployments", "watch"),
        ("batch", "jobs", "watch"),
        ("batch", "jobs", "create"),
        ("batch", "cronjobs", "patch"),
        ("networking.k8s.io", "ingresses", "delete"),
        ("", "events", "create"),
        ("kopf.dev", "clusterkopfpeerings", "patch"),
        # Kopf's managed admission webhook: creates its configurations when absent, then patches them.
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations", "create"),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch"),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "create"),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "patch"),
    }
    assert needed <= grants
    assert not {("", "secrets", v) for v in ("update", "patch", "delete", "deletecollection")} & grants
    assert not any("*" in g for grant in grants for g in grant)
