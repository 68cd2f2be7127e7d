"""The chart and the kustomize base (written with the operator) run the operator the same way:
same image, settings, ports, probes, strategy and RBAC."""

from __future__ import annotations

from typing import Any

import pytest
from manifest_checks import MANIFESTS, build, by_kind, chart_objects, one, rules_of

BASE = MANIFESTS / "base"
pytestmark = pytest.mark.skipif(not (BASE / "kustomization.yaml").exists(), reason="manifests/base is not written yet")
PEERING = {"kopf.dev"}


def operator_deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployments = by_kind(objects, "Deployment")
    assert len(deployments) == 1, [d["metadata"]["name"] for d in deployments]
    return deployments[0]


def operator_grants(objects: list[dict[str, Any]], service_account: str) -> set[tuple[str, str, str]]:
    """Everything the operator's ServiceAccount is granted by the (Cluster)Roles bound to it."""
    roles = {(r["kind"], r["metadata"]["name"]): r for r in by_kind(objects, "ClusterRole") + by_kind(objects, "Role")}
    granted: set[tuple[str, str, str]] = set()
    for binding in by_kind(objects, "ClusterRoleBinding") + by_kind(objects, "RoleBinding"):
        if any(s.get("kind") == "ServiceAccount" and s["name"] == service_account for s in binding["subjects"]):
            role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
            granted |= {g for g in rules_of(role) if g[0] not in PEERING}
    return granted


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return build(BASE)


def test_same_container(base: list[dict[str, Any]]) -> None:
    ours = operator_deployment(chart_objects())["spec"]
    theirs = operator_deployment(base)["spec"]
    assert ours["strategy"] == theirs["strategy"] == {"type": "Recreate"}
    assert ours["replicas"] == theirs.get("replicas", 1) == 1
    a, b = ours["template"]["spec"]["containers"][0], theirs["template"]["spec"]["containers"][0]
    assert a["image"].split(":")[0] == b["image"].split(":")[0].split("@")[0]
    assert a["args"] == b["args"]
    assert sorted(p["containerPort"] for p in a.get("ports", [])) == sorted(
        p["containerPort"] for p in b.get("ports", [])
    )
    assert a["livenessProbe"]["httpGet"]["path"] == b["livenessProbe"]["httpGet"]["path"]
    env_a = {e["name"]: e.get("value") for e in a.get("env", [])}
    env_b = {e["name"]: e.get("value") for e in b.get("env", [])}
    for name, value in env_b.items():
        if name.startswith("KUBELABEL_OPERATOR_") and name != "KUBELABEL_OPERATOR_IMAGE":
            assert env_a.get(name) == value, name


def test_same_rbac(base: list[dict[str, Any]]) -> None:
    chart = chart_objects()
    ours = operator_grants(chart, one(chart, "ServiceAccount", "kubelabel")["metadata"]["name"])
    sa = operator_deployment(base)["spec"]["template"]["spec"]["serviceAccountName"]
    theirs = operator_grants(base, sa)
    assert theirs, "the base binds no role to the operator's ServiceAccount"
    assert theirs - ours == set(), "the chart lacks rights the base grants"
    assert ours - theirs == set(), "the chart grants more than the base"
