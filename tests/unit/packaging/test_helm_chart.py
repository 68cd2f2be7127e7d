"""The Helm chart renders with its defaults and every documented example into valid objects."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from manifest_checks import (
    CHART,
    NAMESPACE,
    by_kind,
    chart_objects,
    example_values,
    one,
    render_chart,
    rules_of,
    validate_all,
)

helm_python = pytest.importorskip("helm_python", reason="helm-python-sdk is in the dev extra")

EXAMPLES = example_values()
KINDS = ("labelingprojects", "storageconnections", "mlbackends")
WEBHOOK_CONFIGURATIONS = ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")
# What Kopf's managed webhook mode calls: create when absent, then patch (the patch only on its name).
WEBHOOK_GRANTS = {("admissionregistration.k8s.io", r, v) for r in WEBHOOK_CONFIGURATIONS for v in ("create", "patch")}


def test_examples_are_documented() -> None:
    # Every example says what it is for on its first line (they are the chart's documentation).
    assert set(EXAMPLES) >= {"namespaced", "monitoring", "try-it-out", "production", "gitops"}
    for path in (CHART / "examples").glob("*.yaml"):
        assert path.read_text().startswith("# "), f"{path.name} lacks a description comment"


@pytest.mark.parametrize("example", ["default", *EXAMPLES])
def test_chart_lints_clean(example: str) -> None:
    result = helm_python.lint(str(CHART), EXAMPLES.get(example, {}), strict=True, kube_version="v1.32.0")
    # Severity 1 is informational (e.g. "icon is recommended"); warnings (2) and errors (3) fail.
    problems = [m for m in result["messages"] if m["severity"] > 1] + result["errors"]
    assert not problems, problems


@pytest.mark.parametrize("example", ["default", *EXAMPLES])
def test_renders_valid_objects(example: str) -> None:
    objects = chart_objects(EXAMPLES.get(example, {}))
    assert objects
    assert validate_all(objects) == []


def test_default_install() -> None:
    objects = chart_objects()
    deployment = one(objects, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    container = spec["template"]["spec"]["containers"][0]
    assert (
        container["image"]
        == f"ghcr.io/kubelabel/kubelabel:{yaml.safe_load((CHART / 'Chart.yaml').read_text())['appVersion']}"
    )
    assert container["args"] == ["operator", "--all-namespaces"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KUBELABEL_OPERATOR_LIVENESS_ENDPOINT"] == "http://0.0.0.0:8080/healthz"
    assert env["KUBELABEL_OPERATOR_STANDALONE"] == "true"
    assert env["KUBELABEL_OPERATOR_METRICS_PORT"] == "9102"
    assert env["KUBELABEL_OPERATOR_IMAGE"] == container["image"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert {p["containerPort"] for p in container["ports"]} == {9102, 8080, 9443}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]

    crds = {c["metadata"]["name"] for c in by_kind(objects, "CustomResourceDefinition")}
    assert crds == {f"{k}.kubelabel.io" for k in KINDS}
    for crd in by_kind(objects, "CustomResourceDefinition"):
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    assert one(objects, "Service", "kubelabel-metrics")["spec"]["ports"][0]["port"] == 9102
    # Off by default: bundled databases, Prometheus operator objects, peering.
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"StatefulSet", "ServiceMonitor", "PodMonitor", "PrometheusRule", "ClusterKopfPeering"}


def test_cluster_scope_grants_the_operator_what_it_needs() -> None:
    objects = chart_objects()
    granted = set(rules_of(one(objects, "ClusterRole", "kubelabel")))
    for kind in KINDS:
        for verb in ("get", "list", "watch", "patch"):
            assert ("kubelabel.io", kind, verb) in granted
        assert ("kubelabel.io", f"{kind}/status", "patch") in granted
    assert ("", "events", "create") in granted
    # Least privilege: no wildcard, no rights on RBAC, no update of anything; Secrets read, watched (a change
    # reconciles the resource naming one) and created (admin tokens), never patched or deleted.
    assert not any("*" in triple for triple in granted)
    assert not any(group == "rbac.authorization.k8s.io" for group, _, _ in granted)
    assert {v for g, r, v in granted if r == "secrets"} == {"get", "list", "watch", "create"}
    assert not any(v == "update" for _, _, v in granted)
    discovery = set(rules_of(one(objects, "ClusterRole", "kubelabel-discovery")))
    assert (
        discovery
        == {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("get", "list", "watch")}
        | {("", "namespaces", v) for v in ("get", "list", "watch")}
        | WEBHOOK_GRANTS
    )


def test_rbac_covers_every_resource_the_operator_touches() -> None:
    # Derived from the operator's own list of resources: a new child kind without RBAC fails here.
    from kubelabel_operator.k8s.resources import BY_KIND

    for values in ({}, EXAMPLES["namespaced"]):
        objects = chart_objects(values)
        roles = by_kind(objects, "Role") or [one(objects, "ClusterRole", "kubelabel")]
        for role in roles:
            resources = {(g, r) for g, r, _ in rules_of(role)}
            missing = {kind for kind, res in BY_KIND.items() if (res.group, res.plural) not in resources}
            assert not missing, f"{role['kind']} {role['metadata'].get('namespace', '')} grants nothing on {missing}"


def test_namespaced_scope_uses_roles_per_watched_namespace() -> None:
    objects = chart_objects(EXAMPLES["namespaced"])
    roles = by_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-nlp", "team-vision"]
    assert sorted(
        b["metadata"]["namespace"] for b in by_kind(objects, "RoleBinding") if "cleanup" not in b["metadata"]["name"]
    ) == ["team-nlp", "team-vision"]
    assert {c["metadata"]["name"] for c in by_kind(objects, "ClusterRole")} == {
        "kubelabel-discovery",
        "kubelabel-admin",
        "kubelabel-edit",
        "kubelabel-view",
    }
    # Watching named namespaces needs no cluster-wide namespace list; the webhook's configurations are
    # cluster-scoped whatever the scope.
    discovery = set(rules_of(one(objects, "ClusterRole", "kubelabel-discovery")))
    assert {r for _, r, _ in discovery} == {"customresourcedefinitions", *WEBHOOK_CONFIGURATIONS}
    args = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["operator", "--namespace=team-vision", "--namespace=team-nlp"]
    assert "--all-namespaces" not in args


def test_namespace_scope_without_a_list_watches_the_release_namespace() -> None:
    objects = chart_objects({"rbac": {"scope": "namespace"}})
    assert [r["metadata"]["namespace"] for r in by_kind(objects, "Role")] == [NAMESPACE]
    args = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--namespace={NAMESPACE}" in args


def test_aggregated_roles() -> None:
    objects = chart_objects()
    for level in ("admin", "edit", "view"):
        role = one(objects, "ClusterRole", f"kubelabel-{level}")
        assert role["metadata"]["labels"][f"rbac.authorization.k8s.io/aggregate-to-{level}"] == "true"
    view = {verb for _, _, verb in rules_of(one(objects, "ClusterRole", "kubelabel-view"))}
    assert view == {"get", "list", "watch"}
    edit = set(rules_of(one(objects, "ClusterRole", "kubelabel-edit")))
    assert ("kubelabel.io", "labelingprojects", "create") in edit
    assert ("kubelabel.io", "labelingprojects/status", "patch") not in edit
    assert not by_kind(chart_objects({"rbac": {"aggregatedRoles": False}}), "ClusterRole")[3:]


def test_no_pre_delete_hook_by_default() -> None:
    """The hook deletes every project: an uninstall must not do that unless asked."""
    objects = chart_objects()
    assert not [o for o in objects if "cleanup" in o["metadata"]["name"]]
    assert all(
        c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        for c in by_kind(objects, "CustomResourceDefinition")
    )


def test_pre_delete_hook_deletes_custom_resources_before_the_operator_goes() -> None:
    objects = chart_objects({"cleanup": {"enabled": True}})
    job = one(objects, "Job", "kubelabel-cleanup")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/kubectl"] and container["args"][0] == "delete"
    assert set(container["args"][1].split(",")) == {f"{k}.kubelabel.io" for k in KINDS}
    assert "--all-namespaces" in container["args"] and "--wait=true" in container["args"]
    # Its RBAC exists before it runs (lower hook weight) and lets it delete exactly the three kinds.
    sa = one(objects, "ServiceAccount", "kubelabel-cleanup")
    role = one(objects, "ClusterRole", "kubelabel-cleanup")
    for hooked in (sa, role, one(objects, "ClusterRoleBinding", "kubelabel-cleanup")):
        assert hooked["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
        assert int(hooked["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
            job["metadata"]["annotations"]["helm.sh/hook-weight"]
        )
    assert {(r, v) for _, r, v in rules_of(role) if v == "delete"} == {(k, "delete") for k in KINDS}
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "kubelabel-cleanup"


def test_pre_delete_hook_in_namespaced_mode_runs_per_namespace() -> None:
    objects = chart_objects({**EXAMPLES["namespaced"], "cleanup": {"enabled": True}})
    containers = one(objects, "Job")["spec"]["template"]["spec"]["containers"]
    assert sorted(c["args"][3] for c in containers) == ["--namespace=team-nlp", "--namespace=team-vision"]
    bindings = [b for b in by_kind(objects, "RoleBinding") if b["metadata"]["name"] == "kubelabel-cleanup"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-nlp", "team-vision"]


def test_crds_can_be_left_to_someone_else_or_not_kept() -> None:
    assert not by_kind(chart_objects({"crds": {"enabled": False}}), "CustomResourceDefinition")
    for crd in by_kind(chart_objects({"crds": {"keep": False}}), "CustomResourceDefinition"):
        assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})
    gitops = by_kind(chart_objects(EXAMPLES["gitops"]), "CustomResourceDefinition")
    assert {c["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] for c in gitops} == {"-1"}


def test_bundled_databases_are_opt_in_and_wired_for_projects() -> None:
    objects = chart_objects(EXAMPLES["try-it-out"])
    sets = {s["metadata"]["name"]: s for s in by_kind(objects, "StatefulSet")}
    assert set(sets) == {"kubelabel-postgresql", "kubelabel-redis"}
    assert sets["kubelabel-postgresql"]["spec"]["template"]["spec"]["containers"][0]["image"] == "postgres:16"
    assert sets["kubelabel-redis"]["spec"]["template"]["spec"]["containers"][0]["image"] == "redis:7"
    pg_secret = one(objects, "Secret", "kubelabel-postgresql")["stringData"]
    assert pg_secret["dsn"].startswith("postgresql://kubelabel:")
    assert pg_secret["dsn"].endswith(f"@kubelabel-postgresql.{NAMESPACE}.svc:5432/kubelabel")
    assert len(pg_secret["password"]) == 24
    assert (
        one(objects, "Secret", "kubelabel-redis")["stringData"]["url"]
        == f"redis://kubelabel-redis.{NAMESPACE}.svc:6379/0"
    )
    notes = render_chart(EXAMPLES["try-it-out"])["kubelabel/templates/NOTES.txt"]
    assert "NOT FOR PRODUCTION" in notes


def test_monitoring_objects() -> None:
    objects = chart_objects(EXAMPLES["monitoring"])
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    pods = one(objects, "PodMonitor")
    assert pods["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "kubelabel",
        "app.kubernetes.io/component": "api",
    }
    rule = one(objects, "PrometheusRule")
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    assert all(r["labels"]["team"] == "ml-platform" for r in alerts)
    assert all("severity" in r["labels"] for r in alerts)
    # Prometheus templates reach Prometheus untouched by Helm.
    assert any("{{ $labels.namespace }}" in r["annotations"]["summary"] for r in alerts)
    dashboard = one(objects, "ConfigMap", "kubelabel-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert '"uid": "kubelabel-overview"' in dashboard["data"]["kubelabel.json"]


def test_production_example() -> None:
    objects = chart_objects(EXAMPLES["production"])
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"].startswith("ghcr.io/kubelabel/kubelabel@sha256:")
    assert pod["nodeSelector"]["kubernetes.io/os"] == "linux"
    assert pod["tolerations"][0]["key"] == "node-role.example.com/platform"
    assert "nodeAffinity" in pod["affinity"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["imagePullSecrets"] == [{"name": "ghcr-pull"}]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KUBELABEL_OPERATOR_STANDALONE"] == "false"
    assert env["KUBELABEL_OPERATOR_PEERING_NAME"] == "kubelabel"
    assert one(objects, "ClusterKopfPeering")["metadata"]["name"] == "kubelabel"
    assert {c["metadata"]["name"] for c in by_kind(objects, "CustomResourceDefinition")} >= {
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }


def operator_container(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return one(chart_objects(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]


def kopf_command_line(container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The `kopf run` arguments the operator builds from this container's args and env."""
    from kubelabel_operator.runner import kopf_args
    from kubelabel_operator.settings import OperatorSettings

    from kubelabel_cli.main import build_parser

    for item in container["env"]:
        if "value" in item:
            monkeypatch.setenv(item["name"], item["value"])
    parsed = build_parser().parse_args(container["args"])
    assert parsed.command == "operator"
    namespaces = None if parsed.all_namespaces else parsed.namespace
    return kopf_args(namespaces, parsed.all_namespaces, OperatorSettings(), parsed.kopf_args)


@pytest.mark.parametrize(
    ("values", "expected", "absent"),
    [
        (
            {},
            ["--all-namespaces", "--standalone", "--log-format=json", "--liveness", "http://0.0.0.0:8080/healthz"],
            ["--verbose", "--quiet", "--namespace"],
        ),
        (EXAMPLES["namespaced"], ["--namespace", "team-vision", "team-nlp", "--standalone"], ["--all-namespaces"]),
        (EXAMPLES["production"], ["--all-namespaces", "--log-format=json"], ["--standalone"]),
        ({"logging": {"level": "debug", "format": "plain"}}, ["--verbose", "--log-format=plain"], ["--quiet"]),
        ({"logging": {"level": "warning"}}, ["--quiet"], ["--verbose"]),
        ({"operator": {"livenessProbe": {"enabled": False}}}, ["--standalone"], ["--liveness"]),
        ({"operator": {"extraArgs": ["--debug"]}}, ["--debug", "--standalone"], ["--"]),
    ],
    ids=["default", "namespaced", "production", "debug", "warning", "no-liveness", "extra-args"],
)
def test_operator_runs_kopf_as_the_values_say(
    values: dict[str, Any], expected: list[str], absent: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through the operator's own CLI parser and settings: renamed settings or flags fail here.
    args = kopf_command_line(operator_container(values), monkeypatch)
    assert args[:3] == ["run", "-m", "kubelabel_operator.handlers"]
    for arg in expected:
        assert arg in args, (arg, args)
    for arg in absent:
        assert arg not in args, (arg, args)


def test_metrics_and_liveness_ports_match_the_container() -> None:
    container = operator_container({"metrics": {"port": 9200}, "operator": {"livenessProbe": {"port": 8090}}})
    env = {e["name"]: e.get("value") for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9200, "healthz": 8090, "webhook": 9443}
    assert env["KUBELABEL_OPERATOR_METRICS_PORT"] == "9200"
    assert env["KUBELABEL_OPERATOR_LIVENESS_ENDPOINT"] == "http://0.0.0.0:8090/healthz"
    assert env["KUBELABEL_LOG_LEVEL"] == "info"


def test_extra_objects_are_rendered() -> None:
    extra: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "{{ .Release.Name }}-extra", "namespace": "{{ .Release.Namespace }}"},
        "data": {"a": "b"},
    }
    objects = chart_objects({"extraObjects": [extra]})
    assert one(objects, "ConfigMap", "kubelabel-extra")["metadata"]["namespace"] == NAMESPACE


def test_notes_tell_the_user_what_to_apply_next() -> None:
    notes = render_chart(EXAMPLES["namespaced"])["kubelabel/templates/NOTES.txt"]
    assert "watches the namespaces: team-vision, team-nlp" in notes
    assert "kubectl apply -n team-vision -f" in notes and "01-minimal-project.yaml" in notes
    assert "port-forward svc/sentiment-api" in notes
    assert "helm uninstall` keeps the CRDs" in notes
    default = render_chart()["kubelabel/templates/NOTES.txt"]
    assert "watches every namespace" in default and "kubectl apply -n default -f" in default


def test_webhook_is_served_through_a_service_with_the_settings_the_operator_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kubelabel_operator.settings import OperatorSettings

    objects = chart_objects()
    container = operator_container()
    for item in container["env"]:
        if "value" in item:
            monkeypatch.setenv(item["name"], item["value"])
    monkeypatch.setenv("KUBELABEL_OPERATOR_WEBHOOK_SERVICE_NAMESPACE", NAMESPACE)  # the fieldRef's value
    settings = OperatorSettings()
    assert settings.webhook_enabled and settings.webhook_mode == "service" and settings.webhook_host == "0.0.0.0"
    assert settings.webhook_failure_policy == "Fail" and settings.webhook_cert_file is None
    service = one(objects, "Service", settings.webhook_service_name)
    assert service["metadata"]["namespace"] == NAMESPACE
    assert service["spec"]["ports"] == [
        {"name": "webhook", "port": settings.webhook_service_port, "targetPort": "webhook", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["webhook"] == settings.webhook_port == 9443
    assert container["readinessProbe"]["tcpSocket"] == {"port": "webhook"}
    # The release owns the (empty) configurations the operator fills in, so uninstalling removes them.
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        assert "webhooks" not in one(objects, kind, settings.webhook_configuration_name)
    # The patch right is limited to that name.
    rules = one(objects, "ClusterRole", "kubelabel-discovery")["rules"]
    (patch,) = [r for r in rules if r["verbs"] == ["patch"]]
    assert patch["resourceNames"] == [settings.webhook_configuration_name] == ["kubelabel.kubelabel.io"]


def test_webhook_certificate_from_a_secret_and_the_webhook_off() -> None:
    container = operator_container({"webhook": {"certificate": {"secretName": "kubelabel-webhook-tls"}}})
    env = {e["name"]: e.get("value") for e in container["env"]}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "webhook-tls")
    assert mount["readOnly"] is True
    for name, key in (("CERT", "tls.crt"), ("KEY", "tls.key"), ("CA", "ca.crt")):
        assert env[f"KUBELABEL_OPERATOR_WEBHOOK_{name}_FILE"] == f"{mount['mountPath']}/{key}"
    pod = one(chart_objects({"webhook": {"certificate": {"secretName": "kubelabel-webhook-tls"}}}), "Deployment")
    volumes = {v["name"]: v for v in pod["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-tls"]["secret"] == {"secretName": "kubelabel-webhook-tls"}

    off = chart_objects({"webhook": {"enabled": False}})
    assert {o["kind"] for o in off}.isdisjoint({"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"})
    assert [s["metadata"]["name"] for s in by_kind(off, "Service")] == ["kubelabel-metrics"]
    granted = {r for c in by_kind(off, "ClusterRole") for _, r, _ in rules_of(c)}
    assert granted.isdisjoint(WEBHOOK_CONFIGURATIONS)
    container = one(off, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in container["env"]}["KUBELABEL_OPERATOR_WEBHOOK_ENABLED"] == "false"
    assert "readinessProbe" not in container and "webhook" not in {p["name"] for p in container["ports"]}
    named = one(
        chart_objects({"webhook": {"configurationName": "labels.example.com"}}), "ValidatingWebhookConfiguration"
    )
    assert named["metadata"]["name"] == "labels.example.com"
