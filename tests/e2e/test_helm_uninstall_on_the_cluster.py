"""`helm uninstall` with the chart's default values leaves every project and its data, on a real
control plane.

The helm CLI is not installed here, so install and uninstall are done as Helm does them, from the
chart rendered by Helm's own engine (helm-python-sdk): install applies the rendered objects; uninstall
runs the release's pre-delete hooks (with the defaults there are none: asserted), then deletes every
object of the release except those marked `helm.sh/resource-policy: keep` (the CRDs). The operator
runs from the chart's Deployment meanwhile, and is stopped as its pod would be.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from installs import CHART, delete_objects, example_project, one, operator_from
from realcluster import Cluster, docs_of, eventually, ready

pytestmark = pytest.mark.e2e
pytest.importorskip("helm_python", reason="helm-python-sdk is in the dev extra")
KEEP = "helm.sh/resource-policy"


def rendered(values: dict[str, Any], release: str, namespace: str) -> list[dict[str, Any]]:
    """Every object of the release, hooks included (NOTES.txt left out)."""
    import helm_python

    out = helm_python.Chart.load(str(CHART)).render(values, name=release, namespace=namespace, is_install=True)
    return [d for path, text in sorted(out.items()) if not path.endswith("NOTES.txt") for d in docs_of(text)]


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def pre_delete_hooks(objects: list[dict[str, Any]]) -> list[str]:
    return [
        f"{o['kind']}/{o['metadata']['name']}"
        for o in objects
        if "pre-delete" in annotations(o).get("helm.sh/hook", "").split(",")
    ]


def uninstall(cluster: Cluster, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What `helm uninstall` deletes: the release's objects but hooks and those kept. Returns them."""
    doomed = [o for o in objects if "helm.sh/hook" not in annotations(o) and annotations(o).get(KEEP) != "keep"]
    cluster(
        "delete", "-f", "-", "--ignore-not-found", "--wait=true", "--timeout=60s",
        stdin=json.dumps({"kind": "List", "apiVersion": "v1", "items": doomed}),
    )  # fmt: skip
    return doomed


def test_helm_uninstall_with_defaults_leaves_every_project_and_its_data(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    release = f"e2e-{uuid.uuid4().hex[:6]}"
    objects = rendered({}, release, namespace)
    # The defaults: no destructive hook, the CRDs kept (deleting a CRD deletes every object of its kind).
    assert pre_delete_hooks(objects) == []
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    assert crds and all(annotations(c).get(KEEP) == "keep" for c in crds)
    # What the opt-in cleanup would add (documented as destructive), to show the check above can fail.
    assert pre_delete_hooks(rendered({"cleanup": {"enabled": True}}, release, namespace))

    projects = cluster.new_namespace("e2e-uninstall")
    installed = [o for o in objects if "helm.sh/hook" not in annotations(o)]
    try:
        cluster.apply(installed)  # helm install
        deployment = one(installed, "Deployment")
        identity = cluster.identity(namespace, deployment["spec"]["template"]["spec"]["serviceAccountName"])
        with operator_from(deployment, identity, tmp_path / "operator.log"):
            cluster.apply([example_project()], projects)
            project = eventually(
                lambda: (p := cluster.get("lproj", "sentiment", projects)) and ready(p) and p,
                timeout=120,
                what="sentiment Ready",
            )
        pvc = cluster.get("pvc", "sentiment-data", projects)
        assert pvc is not None
        children = {(kind, name): cluster.get(kind, name, projects) for kind, name in CHILDREN}

        deleted = uninstall(cluster, installed)  # helm uninstall
        assert {o["kind"] for o in deleted} >= {"Deployment", "ClusterRole", "ClusterRoleBinding", "ServiceAccount"}
        assert cluster.get("deployment", deployment["metadata"]["name"], namespace) is None
        time.sleep(5)  # the garbage collector has seen the deletions

        # Everything of the project is still there, the very same objects (same uids).
        after = cluster.get("lproj", "sentiment", projects)
        assert after is not None and after["metadata"]["uid"] == project["metadata"]["uid"]
        assert not after["metadata"].get("deletionTimestamp")
        kept = cluster.get("pvc", "sentiment-data", projects)
        assert kept is not None and kept["metadata"]["uid"] == pvc["metadata"]["uid"]
        assert kept["status"].get("phase") == "Bound"
        for kind, name in CHILDREN:
            now = cluster.get(kind, name, projects)
            assert now is not None and now["metadata"]["uid"] == children[(kind, name)]["metadata"]["uid"], kind
    finally:
        cluster.run("delete", "lproj", "--all", "-n", projects, "--wait=false", check=False)
        delete_objects(cluster, installed)
        cluster.delete_namespace(projects)


CHILDREN = [
    ("deployment", "sentiment-api"),
    ("service", "sentiment-api"),
    ("configmap", "sentiment-config"),
    ("secret", "sentiment-admin-token"),
]
