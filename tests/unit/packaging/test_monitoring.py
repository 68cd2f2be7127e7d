"""Alerts, dashboard and kube-state-metrics config: valid PromQL over the agreed metric names and real
status fields of the CRDs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from manifest_checks import CONTRACT_METRICS, MANIFESTS, crd_schemas, metric_names, validate_object

promql_parser = pytest.importorskip("promql_parser", reason="promql-parser is in the dev extra")

from promql_eval import Series, firing  # noqa: E402  (it needs promql_parser)

MONITORING = MANIFESTS / "monitoring"


def alert_rules() -> list[dict[str, Any]]:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            # Grafana substitutes its variables before Prometheus sees the query.
            expr = target["expr"].replace("$__rate_interval", "5m")
            yield panel["title"], expr


def test_prometheus_rule_object_is_valid() -> None:
    validate_object(yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text()))


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_is_valid_promql_over_contract_metrics(rule: dict[str, Any]) -> None:
    promql_parser.parse(rule["expr"])
    names = metric_names(rule["expr"])
    assert names <= CONTRACT_METRICS, names - CONTRACT_METRICS
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert rule["alert"].startswith("Kubelabel")


def test_alerts_cover_the_issue() -> None:
    names = {r["alert"] for r in alert_rules()}
    assert {
        "KubelabelStorageSyncFailed",
        "KubelabelMLBackendDown",
        "KubelabelProjectDegraded",
        "KubelabelReconcileErrors",
    } <= names


def test_invalid_promql_is_caught() -> None:
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(kubelabel_operator_reconcile_total[5m])")


def test_dashboard_queries() -> None:
    seen: set[str] = set()
    for title, expr in dashboard_exprs():
        try:
            promql_parser.parse(expr.replace("$namespace", "x").replace("$project", "y"))
        except ValueError as exc:
            pytest.fail(f"panel {title!r}: {exc}: {expr}")
        seen |= metric_names(expr)
    assert seen <= CONTRACT_METRICS, seen - CONTRACT_METRICS
    # Operator and API server metrics both appear.
    assert "kubelabel_operator_reconcile_total" in seen and "kubelabel_http_request_duration_seconds" in seen
    assert "kubelabel_mlbackend_up" in seen and "kubelabel_storage_sync_state" in seen


def test_dashboard_is_importable() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] == "kubelabel-overview"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "namespace", "project"}
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24


def _schema_at(schema: dict[str, Any], path: list[str]) -> dict[str, Any] | None:
    """The sub-schema a kube-state-metrics path points at ('[type=Ready]' selects a list item)."""
    node = schema
    for part in path:
        if part.startswith("[") and part.endswith("]"):
            if node.get("type") != "array":
                return None
            node = node["items"]
            continue
        if node.get("type") == "array":
            node = node["items"]
        props = node.get("properties", {})
        if part not in props:
            return None
        node = props[part]
    return node


METADATA = {"name", "namespace", "generation", "uid", "labels", "creationTimestamp"}


def ksm_config() -> dict[str, Any]:
    return yaml.safe_load((MONITORING / "kube-state-metrics" / "custom-resource-state.yaml").read_text())


def _ksm_paths(res: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """(what, full path) of every field a kube-state-metrics resource entry reads."""
    for label, path in res["labelsFromPath"].items():
        yield f"label {label}", path
    for metric in res["metrics"]:
        each = metric["each"]
        body = each[{"Gauge": "gauge", "Info": "info", "StateSet": "stateSet"}[each["type"]]]
        base = body.get("path", [])
        if base:
            yield metric["name"], base
        for label, path in body.get("labelsFromPath", {}).items():
            yield f"{metric['name']} label {label}", base + path
        if "valueFrom" in body:
            yield f"{metric['name']} value", base + body["valueFrom"]


def test_kube_state_metrics_config_reads_real_status_fields() -> None:
    config = ksm_config()
    assert config["kind"] == "CustomResourceStateMetrics"
    resources = config["spec"]["resources"]
    assert {r["groupVersionKind"]["kind"] for r in resources} == {"LabelingProject", "StorageConnection", "MLBackend"}
    for res in resources:
        gvk = res["groupVersionKind"]
        schema = crd_schemas()[(f"{gvk['group']}/{gvk['version']}", gvk["kind"])]
        names = [m["name"] for m in res["metrics"]]
        assert len(names) == len(set(names))
        assert {"info", "status_condition", "status_observed_generation", "metadata_generation"} <= set(names)
        for where, path in _ksm_paths(res):
            if path[0] == "metadata":
                assert path[1] in METADATA, where
            else:
                assert _schema_at(schema, path) is not None, f"{gvk['kind']} {where}: {path} is not in the CRD"


def test_kube_state_metrics_sync_states_match_the_crd() -> None:
    config = ksm_config()
    storage = next(r for r in config["spec"]["resources"] if r["groupVersionKind"]["kind"] == "StorageConnection")
    state = next(m for m in storage["metrics"] if m["name"] == "sync_state")["each"]["stateSet"]
    schema = crd_schemas()[("kubelabel.io/v1alpha1", "StorageConnection")]
    enum = _schema_at(schema, ["status", "syncState"]).get("enum")
    assert enum is None or sorted(state["list"]) == sorted(enum)
    assert set(state["list"]) == {
        "initialized",
        "queued",
        "in_progress",
        "completed",
        "completed_with_errors",
        "failed",
    }


OPERATOR_METRIC = re.compile(
    r"^kubelabel_(operator_|project_(ready|tasks|labeled_tasks|annotations)$|storage_|mlbackend_)"
)


def test_operator_exports_what_alerts_and_dashboard_read() -> None:
    from kubelabel_operator import metrics
    from prometheus_client import generate_latest

    exposition = generate_latest(metrics.REGISTRY).decode()
    exported = {line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE ")}
    used = set().union(*(metric_names(r["expr"]) for r in alert_rules()))
    used |= set().union(*(metric_names(expr) for _, expr in dashboard_exprs()))
    operator_side = {name for name in used if OPERATOR_METRIC.match(name)}
    assert operator_side, "no operator metric is used"
    assert operator_side <= exported, operator_side - exported
    # The sync states alerts select on are states the operator reports.
    states = set(re.findall(r'state="([a-z_]+)"', " ".join(r["expr"] for r in alert_rules())))
    assert states and states <= set(metrics.SYNC_STATES)


def test_misspelt_rule_field_is_caught() -> None:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    first = rule["spec"]["groups"][0]["rules"][0]
    first["expression"] = first.pop("expr")
    with pytest.raises(AssertionError, match="'expression' was unexpected"):
        validate_object(rule)


# The alerts evaluated over recorded series (tests/unit/packaging/promql_eval.py), minute by minute.


def rule_named(name: str) -> dict[str, Any]:
    return next(r for r in alert_rules() if r["alert"] == name)


def up(values: list[float | None]) -> Series:
    return Series({"__name__": "up", "service": "kubelabel-metrics", "job": "kubelabel-metrics"}, values)


def project_series(name: str, project: str, values: list[float | None]) -> Series:
    return Series({"__name__": name, "namespace": "labeling", "project": project}, values)


def first_firing(rule: dict[str, Any], series: list[Series], minutes: int = 30) -> int | None:
    return next((minute for minute, alerts in enumerate(firing(rule, series, minutes)) if alerts), None)


def test_operator_down_fires_when_the_pod_is_gone() -> None:
    rule = rule_named("KubelabelOperatorDown")
    assert first_firing(rule, [up([1.0] * 30)]) is None
    # Scaled to zero or deleted at minute 5: no `up` series at all from then on.
    gone = [up([1.0] * 5 + [None] * 25)]
    assert first_firing(rule, gone) == 10
    # Scraped but failing (the pod is there, its endpoint does not answer).
    assert first_firing(rule, [up([1.0] * 5 + [0.0] * 25)]) == 10
    # Never installed in this Prometheus, or the Service renamed away from the matcher: it fires too.
    assert first_firing(rule, []) == 5
    # The rule it replaces could not see a pod that is gone.
    assert first_firing({**rule, "expr": 'up{service=~".*kubelabel.*metrics.*"} == 0'}, gone) is None


def test_project_degraded_is_not_raised_for_a_project_scaled_to_zero() -> None:
    rule = rule_named("KubelabelProjectDegraded")
    series = [
        project_series("kubelabel_project_ready", "broken", [0.0] * 30),
        project_series("kubelabel_project_replicas", "broken", [1.0] * 30),
        project_series("kubelabel_project_ready", "paused", [0.0] * 30),
        project_series("kubelabel_project_replicas", "paused", [0.0] * 30),
        project_series("kubelabel_project_ready", "fine", [1.0] * 30),
        project_series("kubelabel_project_replicas", "fine", [2.0] * 30),
    ]
    fired = firing(rule, series, 30)
    assert fired[14] == set() and {dict(s)["project"] for s in fired[15]} == {"broken"}
    assert all({dict(s)["project"] for s in minute} <= {"broken"} for minute in fired)
    # Scaled back up and still not ready: it is a problem again (after the `for:` from then).
    series[3] = project_series("kubelabel_project_replicas", "paused", [0.0] * 5 + [1.0] * 25)
    assert {dict(s)["project"] for s in firing(rule, series, 30)[20]} == {"broken", "paused"}
    # The rule it replaces paged for the project scaled to zero.
    old = firing({**rule, "expr": "kubelabel_project_ready == 0"}, series[:4], 30)
    assert {dict(s)["project"] for s in old[15]} == {"broken", "paused"}


def test_the_evaluator_refuses_what_it_does_not_know() -> None:
    with pytest.raises(NotImplementedError):
        firing({"expr": "sum(rate(kubelabel_operator_reconcile_errors_total[10m])) > 0", "for": "1m"}, [], 2)


def test_operator_exports_desired_replicas_of_a_project() -> None:
    from kubelabel_operator import metrics
    from kubelabel_operator.handlers import report
    from kubelabel_operator.k8s.resources import PROJECTS
    from kubelabel_operator.reconcilers.conditions import Verdict
    from kubelabel_operator.reconcilers.outcome import Outcome
    from prometheus_client import generate_latest

    body = {"metadata": {"namespace": "labeling", "name": "zero"}, "spec": {"server": {"replicas": 0}}}
    report._index(PROJECTS, body, Outcome(Verdict.idle("ScaledToZero"), {}))
    try:
        exposition = generate_latest(metrics.REGISTRY).decode()
        assert 'kubelabel_project_replicas{namespace="labeling",project="zero"} 0.0' in exposition
        assert 'kubelabel_project_ready{namespace="labeling",project="zero"} 0.0' in exposition
    finally:
        metrics.INDEX.forget("LabelingProject", "labeling", "zero")
