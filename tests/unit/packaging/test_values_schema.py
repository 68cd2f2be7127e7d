"""values.schema.json turns a wrong value into a failed install with a message naming the value."""

from __future__ import annotations

from typing import Any

import pytest
from manifest_checks import CHART, render_chart

helm_python = pytest.importorskip("helm_python", reason="helm-python-sdk is in the dev extra")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"logging": {"level": "verbose"}},
            "at '/logging/level': value must be one of 'debug', 'info', 'warning', 'error'",
        ),
        ({"logging": {"format": "xml"}}, "at '/logging/format': value must be one of 'plain', 'full', 'json'"),
        ({"operator": {"replicas": 2}}, "at '/operator/replicas': maximum: got 2, want 1"),
        ({"rbac": {"scope": "global"}}, "at '/rbac/scope': value must be one of 'cluster', 'namespace'"),
        ({"watch": {"namespaces": ["Team_A"]}}, "at '/watch/namespaces/0': 'Team_A' does not match pattern"),
        ({"watch": {"namespaces": "team-a"}}, "at '/watch/namespaces': got string, want array"),
        ({"metrics": {"port": 70000}}, "at '/metrics/port': maximum: got 70,000, want 65,535"),
        ({"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, "at '/metrics/serviceMonitor/interval'"),
        ({"operator": {"resources": {"limits": {"memory": "lots"}}}}, "at '/operator/resources/limits/memory'"),
        (
            {"image": {"pullPolicy": "Sometimes"}},
            "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
        ),
        ({"image": {"digest": "latest"}}, "at '/image/digest': 'latest' does not match pattern"),
        ({"crds": {"enabled": "yes"}}, "at '/crds/enabled': got string, want boolean"),
        ({"postgresql": {"auth": {"password": "p@ss"}}}, "at '/postgresql/auth/password'"),
        ({"webhook": {"failurePolicy": "Never"}}, "at '/webhook/failurePolicy': value must be one of 'Fail', 'Ignore'"),
        (
            {"webhook": {"configurationName": "kubelabel"}},
            "at '/webhook/configurationName': 'kubelabel' does not match",
        ),
        ({"imagee": {"tag": "1"}}, "additional properties 'imagee' not allowed"),
        ({"operator": {"replica": 1}}, "at '/operator': additional properties 'replica' not allowed"),
    ],
)
def test_bad_values_fail_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as caught:
        render_chart(values)
    assert message in str(caught.value)


def test_every_default_value_is_described_by_the_schema() -> None:
    chart = helm_python.Chart.load(str(CHART))
    chart.validate_schema(chart.values)
    schema = chart.schema

    def walk(values: dict[str, Any], node: dict[str, Any], path: str) -> None:
        props = node.get("properties", {})
        for key, value in values.items():
            assert key in props, f"{path}{key} is not in values.schema.json"
            child = props[key]
            if "$ref" in child:
                continue
            if isinstance(value, dict) and child.get("properties"):
                walk(value, child, f"{path}{key}.")

    walk(chart.values, schema, "")
