"""The Helm chart on a real control plane: rendered by Helm's own engine (helm-python-sdk), applied
server-side as `helm install` would (hooks and NOTES.txt left out), and the operator run from the
chart's Deployment (its args and env, the chart's ServiceAccount identity) reconciling example 01
to Ready, cluster-wide (the default values) and with the namespaced RBAC mode.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from installs import (
    children,
    delete_objects,
    example_project,
    one,
    operator_from,
    refusals,
    render_chart,
)
from realcluster import Cluster, eventually, ready

pytestmark = pytest.mark.e2e
pytest.importorskip("helm_python", reason="helm-python-sdk is in the dev extra")


@pytest.fixture
def release(cluster: Cluster) -> Iterator[str]:
    """A release name of this test's own (so its cluster-scoped objects clash with nobody's)."""
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    yield name


def test_default_values_install_a_cluster_wide_operator(
    cluster: Cluster, namespace: str, release: str, tmp_path: Path
) -> None:
    objects = render_chart({}, release, namespace)
    projects = cluster.new_namespace("e2e-helm-projects")
    try:
        cluster.apply(objects)  # what `helm install` sends, server-side
        kinds = {o["kind"] for o in objects}
        assert {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ServiceAccount"} <= kinds
        assert "Role" not in kinds
        deployment = one(objects, "Deployment")
        sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        assert cluster.get("deployment", deployment["metadata"]["name"], namespace), "the server kept the Deployment"
        identity = cluster.identity(namespace, sa)
        with operator_from(deployment, identity, tmp_path / "operator.log") as operator:
            try:
                cluster.apply([example_project()], namespace=projects)
                eventually(
                    lambda: ready(cluster.get("lproj", "sentiment", projects)), timeout=120, what="sentiment Ready"
                )
                found = children(cluster, projects, "sentiment")
                assert all(len(names) == 1 for names in found.values()), found
                # The chart's webhook RBAC: Kopf filled in the rendered configuration (patch by name).
                webhook = cluster.get("validatingwebhookconfiguration", f"{release}-kubelabel.kubelabel.io")
                assert webhook and webhook.get("webhooks"), "the operator could not patch its webhook configuration"
            finally:
                cluster.run("delete", "lproj", "--all", "-n", projects, "--wait=true", "--timeout=60s", check=False)
        assert not refusals(operator.output()), refusals(operator.output())[:5]
    finally:
        delete_objects(cluster, objects)
        cluster.delete_namespace(projects)


def test_namespaced_rbac_mode_watches_only_its_namespaces(
    cluster: Cluster, namespace: str, release: str, tmp_path: Path
) -> None:
    watched = cluster.new_namespace("e2e-helm-watched")
    other = cluster.new_namespace("e2e-helm-other")
    values = {"rbac": {"scope": "namespace"}, "watch": {"namespaces": [watched]}}
    objects = render_chart(values, release, namespace)
    try:
        cluster.apply(objects)  # what `helm install` sends, server-side
        assert {o["metadata"].get("namespace") for o in objects if o["kind"] in {"Role", "RoleBinding"}} == {watched}
        bound = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
        assert [b["roleRef"]["name"] for b in bound] == [f"{release}-kubelabel-discovery"], (
            "only discovery is cluster-wide"
        )
        deployment = one(objects, "Deployment")
        identity = cluster.identity(namespace, deployment["spec"]["template"]["spec"]["serviceAccountName"])
        assert identity.run("get", "lproj", "-n", other, check=False).returncode != 0, (
            "no rights outside its namespaces"
        )
        with operator_from(deployment, identity, tmp_path / "operator.log") as operator:
            try:
                cluster.apply([example_project()], namespace=watched)
                cluster.apply([example_project()], namespace=other)
                eventually(lambda: ready(cluster.get("lproj", "sentiment", watched)), timeout=120, what="Ready")
                assert all(len(names) == 1 for names in children(cluster, watched, "sentiment").values())
                # The project in a namespace it does not watch: no children, no status, no Kopf annotations.
                ignored = cluster.get("lproj", "sentiment", other)
                assert ignored and not ignored.get("status"), ignored.get("status")
                assert not any(k.startswith("kubelabel.io/") for k in ignored["metadata"].get("annotations") or {})
                assert not any(children(cluster, other, "sentiment").values())
            finally:
                cluster.run("delete", "lproj", "--all", "-n", watched, "--wait=true", "--timeout=60s", check=False)
        assert not refusals(operator.output()), refusals(operator.output())[:5]
    finally:
        cluster.run("delete", "lproj", "--all", "-n", other, "--wait=false", check=False)
        delete_objects(cluster, objects)
        cluster.delete_namespace(watched)
        cluster.delete_namespace(other)
