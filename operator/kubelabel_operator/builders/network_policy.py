"""A project's optional NetworkPolicy: who may reach its pods.

It selects every pod of the project (API server, worker, sync Jobs, managed model servers: all carry
`kubelabel.io/project`) and admits, for ingress only:
- the project's own pods, on every port (a model server calls the API, the API calls the model server);
- the operator (its peer from the operator's settings), on every port: it polls the API and checks
  the model servers' /health and /setup;
- the ingress controller's namespace and `allowFrom` peers, on the API port only.
Egress is not restricted: the pods still reach their database, Redis, buckets, webhooks and backends.
"""

from __future__ import annotations

from typing import Any

from kubelabel_operator.builders.meta import API_PORT, PROJECT_LABEL, Owner, labels, metadata
from kubelabel_operator.models.pod import NetworkPolicySpec

COMPONENT = "network-policy"


def name(project: str) -> str:
    return f"{project}-pods"


def network_policy(owner: Owner, policy: NetworkPolicySpec, operator_peer: dict[str, Any]) -> dict[str, Any] | None:
    """None unless `policy` (the project's spec.networkPolicy over the operator's defaults) is enabled."""
    if not policy.enabled:
        return None
    project_pods = {"podSelector": {"matchLabels": {PROJECT_LABEL: owner.name}}}
    api_peers: list[dict[str, Any]] = []
    if policy.ingress_namespace_selector:
        api_peers.append({"namespaceSelector": policy.ingress_namespace_selector})
    api_peers += list(policy.allow_from or [])
    rules: list[dict[str, Any]] = [{"from": [project_pods, operator_peer]}]
    if api_peers:
        rules.append({"from": api_peers, "ports": [{"protocol": "TCP", "port": API_PORT}]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name(owner.name), owner, labels(owner.name, COMPONENT)),
        "spec": {
            "podSelector": {"matchLabels": {PROJECT_LABEL: owner.name}},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }
