"""The operator SIGKILLed while it provisions projects, then started again: it converges with no
duplicate children, keeps the admin tokens it had already generated, and reports every project
Ready at its generation.
"""

from __future__ import annotations

import base64
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
    relocate,
)
from realcluster import ROOT, Cluster, eventually, ready, ready_at_generation

pytestmark = pytest.mark.e2e
PROJECTS = 10


@pytest.fixture
def base(cluster: Cluster, namespace: str) -> Iterator[list[dict[str, Any]]]:
    """manifests/base's ServiceAccount and RBAC, moved aside (see installs.relocate)."""
    prefix = f"e2e-{uuid.uuid4().hex[:6]}"
    objects = relocate(cluster.kustomize(ROOT / "manifests" / "base"), namespace, prefix)
    try:
        cluster.apply(objects)
        yield objects
    finally:
        delete_objects(cluster, objects)


def tokens(cluster: Cluster, namespace: str) -> dict[str, str]:
    secrets = cluster.list("secrets", namespace, selector="kubelabel.io/project")
    return {s["metadata"]["name"]: base64.b64decode(s["data"]["token"]).decode() for s in secrets}


def test_a_killed_operator_restarted_converges_without_duplicates(
    cluster: Cluster, namespace: str, base: list[dict[str, Any]], tmp_path: Path
) -> None:
    projects = cluster.new_namespace("e2e-crash")
    deployment = one(base, "Deployment")
    identity = cluster.identity(namespace, deployment["spec"]["template"]["spec"]["serviceAccountName"])
    # Only the test's namespace (the kill must not disturb other tests' projects); no webhook, whose
    # configuration a killed operator would leave pointing at a closed port.
    settings = {"KUBELABEL_OPERATOR_WEBHOOK_ENABLED": "false"}
    names = [f"crash-{i}" for i in range(PROJECTS)]
    first = operator_from(deployment, identity, tmp_path / "first.log", settings, args=[f"--namespace={projects}"])
    second = operator_from(deployment, identity, tmp_path / "second.log", settings, args=[f"--namespace={projects}"])
    try:
        first.start()
        cluster.apply([example_project(n) for n in names], namespace=projects)
        # Kill it mid-way: some admin tokens written, not every project Ready yet.
        eventually(lambda: tokens(cluster, projects), timeout=60, interval=0.05, what="a first admin token")
        first.kill()
        before = tokens(cluster, projects)
        ready_before = [n for n in names if ready(cluster.get("lproj", n, projects))]
        print(f"at the kill: {len(before)} admin tokens, {len(ready_before)} projects Ready")
        assert len(ready_before) < PROJECTS, "the operator was done before the kill: nothing to recover"
        # A spec change while no operator runs: the new one must catch up with it too.
        cluster("patch", "lproj", names[-1], "-n", projects, "--type=merge", "-p", '{"spec":{"title":"Changed"}}')

        second.start()
        for name in names:
            eventually(
                lambda n=name: ready_at_generation(cluster.get("lproj", n, projects)),
                timeout=180,
                what=f"{name} Ready at its generation",
            )
        for name in names:
            found = children(cluster, projects, name)
            assert {kind: len(objs) for kind, objs in found.items()} == dict.fromkeys(found, 1), (name, found)
        for kind in ("deployments", "services", "configmaps", "persistentvolumeclaims"):
            assert len(cluster.list(kind, projects, selector="kubelabel.io/project")) == PROJECTS, kind
        after = tokens(cluster, projects)
        assert len(after) == PROJECTS
        assert {k: after[k] for k in before} == before, "an admin token generated before the kill changed"
        assert cluster.get("lproj", names[-1], projects)["metadata"]["generation"] == 2
    finally:
        if second.process is None:
            second.start()
        time.sleep(1)
        cluster.run("delete", "lproj", "--all", "-n", projects, "--wait=true", "--timeout=90s", check=False)
        for proc in (first, second):
            if proc.process is not None and proc.process.poll() is None:
                proc.stop()
        cluster.delete_namespace(projects)
