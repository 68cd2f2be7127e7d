"""The annotation kubelabel.io/paused: "true" on a real control plane: a paused project's spec change
does not reach its children, a deleted child is not put back, and its status is not written (but
once, status.paused) while the resyncs (3 s here), stats polls and rollout checks go on; removing
the annotation resumes."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from installs import example_project
from operator_process import OperatorProcess
from realcluster import Cluster, eventually

pytestmark = pytest.mark.e2e
MINIMAL = example_project()
HASH = "kubelabel.io/config-hash"


def status_writes(project: dict[str, Any]) -> list[str]:
    """When each manager last wrote the status subresource (the API server's own record)."""
    fields = project["metadata"].get("managedFields") or []
    return sorted(f"{f['manager']}@{f.get('time')}" for f in fields if f.get("subresource") == "status")


def test_a_paused_project_is_left_alone_until_unpaused(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply([copy.deepcopy(MINIMAL)], namespace)
    dep = eventually(lambda: cluster.get("deployment", "sentiment-api", namespace), what="Deployment")
    first_hash = dep["spec"]["template"]["metadata"]["annotations"][HASH]
    eventually(lambda: (cluster.get("lproj", "sentiment", namespace).get("status") or {}).get("conditions"))

    cluster("annotate", "lproj", "sentiment", "-n", namespace, "kubelabel.io/paused=true")
    paused = eventually(
        lambda: (p := cluster.get("lproj", "sentiment", namespace)) and (p.get("status") or {}).get("paused") and p,
        what="status.paused",
    )
    cluster("patch", "lproj", "sentiment", "-n", namespace, "--type=merge", "-p", '{"spec":{"title":"Paused title"}}')
    cluster("delete", "deployment", "sentiment-api", "-n", namespace, "--wait=true")
    time.sleep(10)  # three resyncs, ten stats polls, and the Deployment's deletion event
    now = cluster.get("lproj", "sentiment", namespace)
    assert now["metadata"]["generation"] == paused["metadata"]["generation"] + 1
    assert cluster.get("deployment", "sentiment-api", namespace) is None, "a paused project's child was put back"
    assert '"Paused title"' not in cluster.get("configmap", "sentiment-config", namespace)["data"]["project.json"]
    assert now["status"] == paused["status"]
    assert status_writes(now) == status_writes(paused), "the status was written while paused"

    cluster("annotate", "lproj", "sentiment", "-n", namespace, "kubelabel.io/paused-")
    dep = eventually(lambda: cluster.get("deployment", "sentiment-api", namespace), what="Deployment back")
    assert dep["spec"]["template"]["metadata"]["annotations"][HASH] != first_hash
    resumed = eventually(
        lambda: (
            (p := cluster.get("lproj", "sentiment", namespace))
            and "paused" not in p["status"]
            and p["status"].get("observedGeneration") == p["metadata"]["generation"]
            and p
        ),
        what="resumed status",
    )
    assert resumed["status"]["conditions"]
