"""Two operators with Kopf peering (manifests/base/peering): only the higher-priority one acts.

The lower-priority operator runs first and provisions projects; when the higher-priority one starts,
the first pauses (its log says so) and from then on writes nothing to the projects' namespace: it
runs as a ServiceAccount of its own, and a ValidatingAdmissionPolicy refuses every write that
identity makes there, so a write it tried would show in its log as a refusal (and not happen).
The projects still become Ready, a spec change is still rolled out: by the active operator.
"""

from __future__ import annotations

import time
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
from realcluster import ROOT, Cluster, docs_of, eventually, ready, ready_at_generation

pytestmark = pytest.mark.e2e
PEERING = ROOT / "manifests" / "base" / "peering" / "kopf-peering.yaml"
STANDBY = "kubelabel-operator-standby"
PAUSED = "Pausing operations in favour of"


@pytest.fixture
def install(cluster: Cluster, namespace: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """manifests/base's RBAC (moved aside) and the peering component, with a peering name of our own."""
    prefix = f"e2e-{uuid.uuid4().hex[:6]}"
    crd, peering = docs_of(PEERING.read_text())
    had_crd = cluster.get("crd", crd["metadata"]["name"]) is not None
    cluster.apply([crd])
    cluster("wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}", "--timeout=60s")
    peering["metadata"]["name"] = f"{prefix}-{peering['metadata']['name']}"
    objects = relocate(cluster.kustomize(ROOT / "manifests" / "base"), namespace, prefix)
    # The standby's own identity, with the same ClusterRole (so the policy below can tell them apart).
    role = one(objects, "ClusterRoleBinding")["roleRef"]["name"]
    objects += [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": STANDBY, "namespace": namespace}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{prefix}-standby"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": STANDBY, "namespace": namespace}],
        },
        peering,
    ]
    try:
        cluster.apply(objects)
        yield prefix, objects
    finally:
        delete_objects(cluster, objects)
        if not had_crd:
            cluster.run("delete", "crd", crd["metadata"]["name"], "--wait=false", check=False)


def refusing_writes_of(user: str, namespace: str, prefix: str) -> list[dict[str, Any]]:
    """A ValidatingAdmissionPolicy (and its binding) refusing any write `user` makes in `namespace`."""
    name = f"{prefix}-standby-writes"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "resourceRules": [
                    {
                        "apiGroups": ["*"],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE", "DELETE"],
                        "resources": ["*/*"],
                    }
                ],
            },
            "matchConditions": [{"name": "standby", "expression": f"request.userInfo.username == '{user}'"}],
            "validations": [{"expression": "false", "message": "write by the paused operator"}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    return [policy, binding]


def test_only_the_higher_priority_operator_acts(
    cluster: Cluster, namespace: str, install: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    prefix, objects = install
    deployment = one(objects, "Deployment")
    projects = cluster.new_namespace("e2e-peering")
    env = {
        "KUBELABEL_OPERATOR_STANDALONE": "false",
        "KUBELABEL_OPERATOR_PEERING_NAME": f"{prefix}-kubelabel",
        # Two webhook servers would take turns at one configuration; peering is what is tested here.
        "KUBELABEL_OPERATOR_WEBHOOK_ENABLED": "false",
    }
    standby_identity = cluster.identity(namespace, STANDBY)
    standby = operator_from(
        deployment, standby_identity, tmp_path / "standby.log", {**env, "KUBELABEL_OPERATOR_PRIORITY": "10"}
    )
    active = operator_from(
        deployment,
        cluster.identity(namespace, "kubelabel-operator"),
        tmp_path / "active.log",
        {**env, "KUBELABEL_OPERATOR_PRIORITY": "100"},
    )
    policy: list[dict[str, Any]] = []
    try:
        # Alone, the lower-priority operator acts.
        standby.start()
        cluster.apply([example_project("first")], namespace=projects)
        eventually(lambda: ready(cluster.get("lproj", "first", projects)), timeout=120, what="first Ready")

        active.start()
        eventually(lambda: PAUSED in standby.output(), timeout=60, what="the standby pausing")
        assert PAUSED not in active.output()
        policy = refusing_writes_of(f"system:serviceaccount:{namespace}:{STANDBY}", projects, prefix)
        cluster.apply(policy)

        # The policy is in force (the standby's identity can no longer write there) before going on.
        def probe() -> str:
            label = f"e2e-probe={uuid.uuid4().hex[:4]}"
            result = standby_identity.run(
                "annotate", "--overwrite", "lproj", "first", "-n", projects, label, check=False
            )
            assert "write by the paused operator" in result.stderr, result.stderr + result.stdout
            return result.stderr

        eventually(probe, timeout=30, what="the policy in force")
        mark = len(standby.output())

        # Work for whoever is active: a spec change and new projects.
        cluster("patch", "lproj", "first", "-n", projects, "--type=merge", "-p", '{"spec":{"title":"Round two"}}')
        cluster.apply([example_project(n) for n in ("second", "third")], namespace=projects)
        for name in ("first", "second", "third"):
            eventually(
                lambda n=name: ready_at_generation(cluster.get("lproj", n, projects)),
                timeout=120,
                what=f"{name} Ready at its generation",
            )
            assert all(len(kids) == 1 for kids in children(cluster, projects, name).values())
        # Children only the periodic resync (3 s here) puts back: whichever operator's loop runs, acts.
        cluster("delete", "configmap", "-n", projects, "-l", "kubelabel.io/project")
        for name in ("first", "second", "third"):
            eventually(lambda n=name: cluster.get("configmap", f"{n}-config", projects), what=f"{name}-config back")
        time.sleep(6)
        since_pause = standby.output()[mark:]
        assert not refusals(since_pause), refusals(since_pause)[:5]
        assert projects not in since_pause, since_pause[-3000:]
        assert active.process and active.process.poll() is None
        assert projects in active.output(), "the active operator handled the projects"
    finally:
        try:
            if policy:
                delete_objects(cluster, policy)
            cluster.run("delete", "lproj", "--all", "-n", projects, "--wait=true", "--timeout=60s", check=False)
        finally:
            for proc in (active, standby):
                proc.stop()
            print("standby:", standby.output()[-4000:], "\nactive:", active.output()[-2000:])
            cluster.delete_namespace(projects)


def test_operators_of_the_same_priority_both_pause(
    cluster: Cluster, namespace: str, install: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """What two replicas of the chart with leaderElection would do (no per-pod priority): both pause
    until one stops, so extra replicas are no hot standbys (values.yaml says to keep one)."""
    prefix, objects = install
    deployment = one(objects, "Deployment")
    projects = cluster.new_namespace("e2e-peering")
    identity = cluster.identity(namespace, "kubelabel-operator")
    env = {
        "KUBELABEL_OPERATOR_STANDALONE": "false",
        "KUBELABEL_OPERATOR_PEERING_NAME": f"{prefix}-kubelabel",
        "KUBELABEL_OPERATOR_WEBHOOK_ENABLED": "false",
    }
    one_ = operator_from(deployment, identity, tmp_path / "one.log", env)
    two = operator_from(deployment, identity, tmp_path / "two.log", env)
    try:
        one_.start()
        two.start()
        for proc in (one_, two):
            eventually(lambda p=proc: "Pausing all operators, including self" in p.output(), what="both pausing")
        cluster.apply([example_project("waiting")], namespace=projects)
        time.sleep(8)
        assert not (cluster.get("lproj", "waiting", projects) or {}).get("status"), "a paused operator acted"
        two.stop()  # a clean stop leaves the peering: the other resumes
        eventually(lambda: "Resuming operations" in one_.output(), timeout=90, what="the other resuming")
        eventually(lambda: ready(cluster.get("lproj", "waiting", projects)), timeout=120, what="Ready once alone")
    finally:
        cluster.run("delete", "lproj", "--all", "-n", projects, "--wait=true", "--timeout=60s", check=False)
        for proc in (one_, two):
            proc.stop()
        cluster.delete_namespace(projects)
