"""Each kustomize overlay applied server-side to a real control plane (moved into the test's namespace,
its cluster-scoped objects prefixed: see installs.relocate), and the namespaced overlay's operator,
run with the overlay's Deployment args and ServiceAccount, reconciling example 01 in team-vision
while a project in a namespace it does not watch is left alone. Its Roles are the RBAC under test: a
verb taken out of one (here, not in the repository) keeps a project from becoming Ready.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from installs import (
    children,
    delete_objects,
    example_project,
    one,
    operator_from,
    refusals,
    relocate,
)
from realcluster import ROOT, Cluster, condition, eventually, ready

pytestmark = pytest.mark.e2e
OVERLAYS = ROOT / "manifests" / "overlays"
TEAMS = ("team-vision", "team-nlp")
# The Prometheus Operator's kinds the monitoring overlay uses: minimal CRDs, any spec accepted.
MONITORING_KINDS = ("ServiceMonitor", "PodMonitor", "PrometheusRule")


@pytest.fixture
def prefix(cluster: Cluster) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    yield name


def overlay(cluster: Cluster, name: str, namespace: str, prefix: str) -> list[dict[str, Any]]:
    """The overlay's objects, moved aside (applied by the test inside its cleanup's reach)."""
    return relocate(cluster.kustomize(OVERLAYS / name), namespace, prefix)


def apply_and_find(cluster: Cluster, objects: list[dict[str, Any]]) -> None:
    """Apply server-side, then read each object back: the server kept every one."""
    cluster.apply(objects)
    for obj in objects:
        found = cluster.get(obj["kind"].lower(), obj["metadata"]["name"], obj["metadata"].get("namespace"))
        assert found, (obj["kind"], obj["metadata"]["name"])


def test_cluster_wide_overlay_is_accepted(cluster: Cluster, namespace: str, prefix: str) -> None:
    objects = overlay(cluster, "cluster-wide", namespace, prefix)
    try:
        apply_and_find(cluster, objects)
        binding = cluster.get("clusterrolebinding", f"{prefix}-kubelabel-operator")
        assert binding and binding["subjects"][0]["namespace"] == namespace
        # The identity it binds may do what the operator does, everywhere; the people's roles aggregate.
        identity = cluster.identity(namespace, "kubelabel-operator")
        assert (
            identity("auth", "can-i", "patch", "labelingprojects.kubelabel.io", "--subresource=status", "-A").strip()
            == "yes"
        )
        # Secrets: read and watched (a change reconciles the resource naming one), never written but created.
        assert identity.run("auth", "can-i", "watch", "secrets", "-A", check=False).stdout.strip() == "yes"
        assert identity.run("auth", "can-i", "patch", "secrets", "-A", check=False).stdout.strip() == "no"
    finally:
        delete_objects(cluster, objects)


@pytest.fixture
def monitoring_crds(cluster: Cluster) -> Iterator[None]:
    created = []
    for kind in MONITORING_KINDS:
        plural = kind.lower() + "s"
        name = f"{plural}.monitoring.coreos.com"
        if cluster.get("crd", name) is None:
            cluster.apply([_crd(kind, plural)])
            created.append(name)
    for name in created:
        cluster("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    yield
    for name in created:
        cluster.run("delete", "crd", name, "--wait=false", check=False)


def _crd(kind: str, plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                        }
                    },
                }
            ],
        },
    }


def test_monitoring_overlay_is_accepted(cluster: Cluster, namespace: str, prefix: str, monitoring_crds: None) -> None:
    objects = overlay(cluster, "monitoring", namespace, prefix)
    try:
        apply_and_find(cluster, objects)
        assert {o["kind"] for o in objects} >= set(MONITORING_KINDS)
        service = cluster.get("service", "kubelabel-operator-metrics", namespace)
        deployment = cluster.get("deployment", "kubelabel-operator", namespace)
        assert service and deployment
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        # The Service selects the operator's pod (kwok runs it): the scrape target exists.
        eventually(
            lambda: (e := cluster.get("endpoints", "kubelabel-operator-metrics", namespace)) and e.get("subsets"),
            what="metrics endpoints",
        )
    finally:
        delete_objects(cluster, objects)


@pytest.fixture
def teams(cluster: Cluster) -> Iterator[tuple[str, ...]]:
    for team in TEAMS:
        found = cluster.get("namespace", team)
        if found is not None and not found["metadata"].get("deletionTimestamp"):
            pytest.fail(f"namespace {team} exists already (another run?)", pytrace=False)
        eventually(lambda t=team: cluster.get("namespace", t) is None, timeout=120, what=f"{team} gone")
        cluster("create", "namespace", team)
    yield TEAMS
    for team in TEAMS:
        cluster.run("delete", "lproj", "--all", "-n", team, "--wait=false", check=False)
        cluster.delete_namespace(team)


def test_namespaced_overlay_runs_the_operator_in_its_namespaces_only(
    cluster: Cluster, namespace: str, prefix: str, teams: tuple[str, ...], tmp_path: Path
) -> None:
    objects = overlay(cluster, "namespaced", namespace, prefix)
    other = cluster.new_namespace("e2e-unwatched")
    try:
        cluster.apply(objects)
        assert {o["metadata"]["namespace"] for o in objects if o["kind"] == "Role"} == set(teams)
        deployment = one(objects, "Deployment")
        assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == [
            "operator",
            "--namespace=team-vision",
            "--namespace=team-nlp",
        ]
        identity = cluster.identity(namespace, deployment["spec"]["template"]["spec"]["serviceAccountName"])
        webhook = f"{prefix}-kubelabel.kubelabel.io"
        env = {"KUBELABEL_OPERATOR_WEBHOOK_CONFIGURATION_NAME": webhook}
        with operator_from(deployment, identity, tmp_path / "operator.log", env) as operator:
            try:
                cluster.apply([example_project()], namespace="team-vision")
                cluster.apply([example_project()], namespace=other)
                eventually(lambda: ready(cluster.get("lproj", "sentiment", "team-vision")), timeout=120, what="Ready")
                assert all(len(n) == 1 for n in children(cluster, "team-vision", "sentiment").values())
                assert (cluster.get("validatingwebhookconfiguration", webhook) or {}).get("webhooks")
                ignored = cluster.get("lproj", "sentiment", other)
                assert ignored and not ignored.get("status"), "a project outside the watched namespaces was handled"
                assert not any(children(cluster, other, "sentiment").values())
                assert not refusals(operator.output()), refusals(operator.output())[:5]

                _a_missing_verb_is_noticed(cluster, objects, operator.output)
            finally:
                cluster.run(
                    "delete", "lproj", "--all", "-n", "team-vision", "--wait=true", "--timeout=60s", check=False
                )
    finally:
        cluster.run("delete", "lproj", "--all", "-n", other, "--wait=false", check=False)
        cluster.delete_namespace(other)
        delete_objects(cluster, objects)


def _a_missing_verb_is_noticed(cluster: Cluster, objects: list[dict[str, Any]], output: Any) -> None:
    """The Role without `create` on Secrets: the next project never gets its admin token, nor Ready."""
    role = one([o for o in objects if o["metadata"].get("namespace") == "team-vision"], "Role")
    crippled = copy.deepcopy(role)
    for rule in crippled["rules"]:
        if rule["resources"] == ["secrets"]:
            rule["verbs"].remove("create")
    cluster.apply([crippled])
    try:
        cluster.apply([example_project("second")], namespace="team-vision")
        eventually(lambda: refusals(output()), timeout=60, what="the operator's 403")
        assert cluster.get("secret", "second-admin-token", "team-vision") is None
        # The cause reaches the project's status, not only the operator's log.
        second = eventually(
            lambda: (
                (p := cluster.get("lproj", "second", "team-vision"))
                and condition(p, "Ready").get("reason") == "Forbidden"
                and p
            ),
            timeout=60,
            what="Forbidden in status",
        )
        assert not ready(second)
        assert "secrets" in condition(second, "Ready")["message"], condition(second, "Ready")
    finally:
        cluster.apply([role])
    # The verb back: the operator's retry gets through, so the missing verb was the cause.
    eventually(lambda: ready(cluster.get("lproj", "second", "team-vision")), timeout=120, what="Ready once granted")
