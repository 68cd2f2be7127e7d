"""spec.deletionPolicy on a real control plane: the real garbage collector and kubectl delete.

Retain (the default) keeps a deleted project's SQLite PVC, labelled, and a new project of the same
name (or with spec.adoptFrom) takes that very PVC back; Delete leaves nothing behind.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from installs import example_project
from operator_process import OperatorProcess
from realcluster import Cluster, eventually

pytestmark = pytest.mark.e2e
MINIMAL = example_project()


def project(name: str, **spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(MINIMAL)
    body["metadata"] = {"name": name}
    body["spec"].update(spec)
    return body


def claim_of(cluster: Cluster, namespace: str, name: str) -> str:
    """The claim the project's API Deployment mounts (once the operator wrote it)."""
    dep = eventually(lambda: cluster.get("deployment", f"{name}-api", namespace), what=f"{name}-api")
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    return str(volumes["data"]["persistentVolumeClaim"]["claimName"])


def delete_project(cluster: Cluster, namespace: str, name: str) -> None:
    """kubectl delete, waiting for the project and for the garbage collector to remove its Deployment."""
    cluster("delete", "lproj", name, "-n", namespace, "--wait=true", "--timeout=60s")
    eventually(lambda: cluster.get("deployment", f"{name}-api", namespace) is None, what=f"{name}-api collected")


def test_retain_keeps_the_volume_and_a_new_project_of_the_name_adopts_it(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply([project("keep")], namespace)
    assert claim_of(cluster, namespace, "keep") == "keep-data"
    first_uid = cluster.get("lproj", "keep", namespace)["metadata"]["uid"]
    pvc = cluster.get("pvc", "keep-data", namespace)
    assert pvc is not None and not pvc["metadata"].get("ownerReferences")

    # Foreground deletion (what Argo CD's prune uses) would take owned dependents first: nothing here.
    cluster("delete", "lproj", "keep", "-n", namespace, "--cascade=foreground", "--wait=true", "--timeout=60s")
    eventually(lambda: cluster.get("deployment", "keep-api", namespace) is None, what="keep-api collected")
    kept = cluster.get("pvc", "keep-data", namespace)
    assert kept is not None and not kept["metadata"].get("deletionTimestamp"), "the data volume went with the project"
    assert kept["metadata"]["labels"]["kubelabel.io/retained-from"] == "keep"
    assert kept["metadata"]["annotations"]["kubelabel.io/retained-from-uid"] == first_uid
    events = eventually(
        lambda: [
            e
            for e in cluster.list("events", namespace)
            if e["reason"] == "Retained" and e["involvedObject"]["name"] == "keep-data"
        ],
        what="a Retained Event on the PVC",
    )
    assert events[0]["type"] == "Normal" and "'keep'" in events[0]["message"]

    # The same name again, this time with Delete: the very same PVC, now owned by the new project.
    cluster.apply([project("keep", deletionPolicy="Delete")], namespace)
    second_uid = eventually(lambda: cluster.get("lproj", "keep", namespace), what="new project")["metadata"]["uid"]
    assert second_uid != first_uid
    adopted = eventually(
        lambda: (
            (p := cluster.get("pvc", "keep-data", namespace))
            and [r["uid"] for r in p["metadata"].get("ownerReferences") or []] == [second_uid]
            and p
        ),
        what="the retained PVC owned by the new project",
    )
    assert adopted["metadata"]["uid"] == kept["metadata"]["uid"]
    assert "kubelabel.io/retained-from" not in adopted["metadata"]["labels"]
    assert claim_of(cluster, namespace, "keep") == "keep-data"
    # The Event is posted after the adoption's patch: it may come a moment after the owner does.
    eventually(
        lambda: any(
            e["reason"] == "VolumeAdopted" and e["involvedObject"]["uid"] == second_uid
            for e in cluster.list("events", namespace)
        ),
        what="a VolumeAdopted Event on the new project",
    )

    # Delete: the garbage collector removes the PVC with the project.
    delete_project(cluster, namespace, "keep")
    eventually(lambda: cluster.get("pvc", "keep-data", namespace) is None, what="keep-data collected")
    assert cluster.list("pvc", namespace) == []


def test_adopt_from_takes_another_projects_retained_volume(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply([project("first")], namespace)
    assert claim_of(cluster, namespace, "first") == "first-data"
    volume_uid = eventually(lambda: cluster.get("pvc", "first-data", namespace))["metadata"]["uid"]
    delete_project(cluster, namespace, "first")

    cluster.apply([project("second", adoptFrom="first")], namespace)
    assert claim_of(cluster, namespace, "second") == "first-data"
    pvc = eventually(
        lambda: (
            (p := cluster.get("pvc", "first-data", namespace))
            and p["metadata"]["labels"].get("kubelabel.io/retained-from") == "second"
            and p
        ),
        what="first-data relabelled for second",
    )
    assert pvc["metadata"]["uid"] == volume_uid and not pvc["metadata"].get("ownerReferences")
    assert cluster.get("pvc", "second-data", namespace) is None, "a second, empty volume was made"
    # Retain again: deleting the adopter keeps the volume too.
    delete_project(cluster, namespace, "second")
    assert cluster.get("pvc", "first-data", namespace) is not None
