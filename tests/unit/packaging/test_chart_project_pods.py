"""The chart's projectPods and projectNetworkPolicy values reach the operator as settings it parses."""

from __future__ import annotations

import json

import pytest
from kubelabel_operator.settings import OperatorSettings
from manifest_checks import chart_objects, one

pytest.importorskip("helm_python", reason="helm-python-sdk is in the dev extra")


def operator_settings(values: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> OperatorSettings:
    container = one(chart_objects(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    for item in container["env"]:
        if item["name"].startswith("KUBELABEL_OPERATOR_") and "value" in item:
            monkeypatch.setenv(item["name"], item["value"])
    return OperatorSettings()


def test_defaults_leave_every_pod_field_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = operator_settings({}, monkeypatch)
    assert settings.pod_defaults.wire() == {}
    assert settings.network_policy.enabled is False
    assert settings.network_policy.ingress_namespace_selector == {
        "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
    }
    # The peer that admits the operator names its release's namespace and pod labels.
    peer = settings.network_policy_operator_peer
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "kubelabel-system"}}
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/instance"]


def test_project_pod_values_become_the_operators_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    pods = {
        "imagePullSecrets": [{"name": "regcred"}],
        "nodeSelector": {"pool": "labeling"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "serviceAccountName": "labeling-identity",
        "labels": {"team": "ml"},
    }
    network = {"enabled": True, "ingressNamespaceSelector": {"matchLabels": {"name": "ingress"}}}
    settings = operator_settings({"projectPods": pods, "projectNetworkPolicy": network}, monkeypatch)
    assert settings.pod_defaults.wire() == pods
    assert settings.network_policy.enabled is True
    assert settings.network_policy.ingress_namespace_selector == {"matchLabels": {"name": "ingress"}}


@pytest.mark.parametrize("labels", [{"kubelabel.io/project": "x"}, {"app.kubernetes.io/managed-by": "me"}])
def test_the_operators_label_keys_are_refused_by_the_values_schema(labels: dict[str, str]) -> None:
    with pytest.raises(Exception, match="propertyName"):
        chart_objects({"projectPods": {"labels": labels}})
    assert json.dumps(labels)  # the same keys the operator refuses at start (test_operator_placement)
