"""The kustomize overlays on manifests/base: cluster-wide, namespaced and with monitoring."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from manifest_checks import CHART, MANIFESTS, build, by_kind, chart_objects, example_values, one, rules_of

OVERLAYS = MANIFESTS / "overlays"
pytestmark = pytest.mark.skipif(
    not (MANIFESTS / "base" / "kustomization.yaml").exists(), reason="manifests/base is not written yet"
)


def deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    found = by_kind(objects, "Deployment")
    assert len(found) == 1
    return found[0]


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return deployment(objects)["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="module")
def overlays() -> dict[str, list[dict[str, Any]]]:
    return {name: build(OVERLAYS / name) for name in ("cluster-wide", "namespaced", "monitoring")}


def test_cluster_wide(overlays: dict[str, list[dict[str, Any]]]) -> None:
    objects = overlays["cluster-wide"]
    deploy = deployment(objects)
    assert deploy["metadata"]["namespace"] == "kubelabel-system"
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert container(objects)["image"] == f"ghcr.io/kubelabel/kubelabel:{app_version}"
    assert not any(a.startswith("--namespace") for a in container(objects)["args"])
    names = {c["metadata"]["name"] for c in by_kind(objects, "CustomResourceDefinition")}
    assert names == {"labelingprojects.kubelabel.io", "storageconnections.kubelabel.io", "mlbackends.kubelabel.io"}
    assert by_kind(objects, "ClusterRoleBinding"), "the operator needs cluster-wide rights here"
    # The admission webhook: a Service on the operator's pods, named as its settings say.
    env = {e["name"]: e.get("value") for e in container(objects)["env"]}
    service = one(objects, "Service", env["KUBELABEL_OPERATOR_WEBHOOK_SERVICE_NAME"])
    assert service["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container(objects)["ports"]}
    name = env["KUBELABEL_OPERATOR_WEBHOOK_CONFIGURATION_NAME"]
    assert "webhooks" not in one(objects, "ValidatingWebhookConfiguration", name)


def test_namespaced_grants_the_chart_rules_per_watched_namespace(overlays: dict[str, list[dict[str, Any]]]) -> None:
    objects = overlays["namespaced"]
    args = container(objects)["args"]
    watched = sorted(a.split("=", 1)[1] for a in args if a.startswith("--namespace="))
    assert watched == ["team-nlp", "team-vision"] and "--all-namespaces" not in args
    roles = by_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == watched
    chart_role = by_kind(chart_objects(example_values()["namespaced"]), "Role")[0]
    for role in roles:
        assert set(rules_of(role)) == set(rules_of(chart_role))
    sa = deployment(objects)["spec"]["template"]["spec"]["serviceAccountName"]
    ns = deployment(objects)["metadata"]["namespace"]
    for binding in by_kind(objects, "RoleBinding") + by_kind(objects, "ClusterRoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]
    # Cluster-wide, only CRD discovery and the webhook's configurations remain (and the aggregated roles
    # for users), as in the chart.
    (crb,) = by_kind(objects, "ClusterRoleBinding")
    discovery = one(objects, "ClusterRole", crb["roleRef"]["name"])
    chart_discovery = one(chart_objects(example_values()["namespaced"]), "ClusterRole", "kubelabel-discovery")
    assert set(rules_of(discovery)) == set(rules_of(chart_discovery))
    assert {r for _, r, _ in rules_of(discovery)} == {
        "customresourcedefinitions",
        "validatingwebhookconfigurations",
        "mutatingwebhookconfigurations",
    }


def test_monitoring_scrapes_the_operator(overlays: dict[str, list[dict[str, Any]]]) -> None:
    objects = overlays["monitoring"]
    deploy = deployment(objects)
    service = one(objects, "Service", "kubelabel-operator-metrics")
    assert service["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    monitor = one(objects, "ServiceMonitor")
    labels = service["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    ports = {p["containerPort"] for p in container(objects).get("ports", [])}
    assert service["spec"]["ports"][0]["targetPort"] in ports | {
        p.get("name") for p in container(objects).get("ports", [])
    }
    assert one(objects, "PrometheusRule")["metadata"]["namespace"] == "kubelabel-system"
    assert one(objects, "ConfigMap", "kubelabel-grafana-dashboard")
    assert one(objects, "PodMonitor")["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
