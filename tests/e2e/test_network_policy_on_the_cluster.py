"""A project's NetworkPolicy on a real control plane: off by default; spec.networkPolicy.enabled
makes <project>-pods as specified (the project's pods and the operator on every port, the ingress
namespace and allowFrom peers on the API port; egress untouched); the operator's default
(KUBELABEL_OPERATOR_NETWORK_POLICY) turns it on for every project; disabling it deletes it. kwok
runs no network plugin, so what is checked is the object the API server accepted."""

from __future__ import annotations

import copy
import json

import pytest
from installs import example_project
from operator_process import OperatorProcess
from realcluster import Cluster, eventually

pytestmark = pytest.mark.e2e
PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "e2e-operators"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/component": "operator"}},
}


@pytest.fixture
def operator_env() -> dict[str, str]:
    return {"KUBELABEL_OPERATOR_NETWORK_POLICY_OPERATOR_PEER": json.dumps(PEER)}


def test_the_policy_follows_spec_network_policy(cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    plain = example_project("plain")
    guarded = copy.deepcopy(example_project("guarded"))
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    guarded["spec"]["networkPolicy"] = {"enabled": True, "allowFrom": [monitoring]}
    cluster.apply([plain, guarded], namespace)
    policy = eventually(lambda: cluster.get("networkpolicy", "guarded-pods", namespace), what="the NetworkPolicy")
    assert policy["metadata"]["ownerReferences"][0]["name"] == "guarded"
    spec = policy["spec"]
    project_pods = {"podSelector": {"matchLabels": {"kubelabel.io/project": "guarded"}}}
    assert spec["podSelector"] == project_pods["podSelector"]
    assert spec["policyTypes"] == ["Ingress"]
    assert spec["ingress"] == [
        {"from": [project_pods, PEER]},
        {
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
                monitoring,
            ],
            "ports": [{"protocol": "TCP", "port": 8080}],
        },
    ]
    # Its pods are the ones it selects: the API server's carries the label.
    eventually(lambda: cluster.list("pods", namespace, "kubelabel.io/project=guarded,app.kubernetes.io/component=api"))
    assert cluster.get("networkpolicy", "plain-pods", namespace) is None  # off by default

    cluster(
        "patch",
        "lproj",
        "guarded",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"networkPolicy":{"enabled":false}}}',
    )
    eventually(lambda: cluster.get("networkpolicy", "guarded-pods", namespace) is None, timeout=30, what="deleted")


@pytest.mark.parametrize(
    "operator_env",
    [
        {
            "KUBELABEL_OPERATOR_NETWORK_POLICY": json.dumps(
                {"enabled": True, "ingressNamespaceSelector": {"matchLabels": {"ingress": "yes"}}}
            )
        }
    ],
)
def test_the_operators_default_turns_it_on_for_every_project(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    opted_out = copy.deepcopy(example_project("opted-out"))
    opted_out["spec"]["networkPolicy"] = {"enabled": False}
    cluster.apply([example_project("sentiment"), opted_out], namespace)
    policy = eventually(lambda: cluster.get("networkpolicy", "sentiment-pods", namespace), what="the NetworkPolicy")
    assert policy["spec"]["ingress"][1]["from"] == [{"namespaceSelector": {"matchLabels": {"ingress": "yes"}}}]
    eventually(lambda: cluster.get("deployment", "opted-out-api", namespace), what="the opted-out project's API")
    assert cluster.get("networkpolicy", "opted-out-pods", namespace) is None
