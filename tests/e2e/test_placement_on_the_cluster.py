"""Placement and identity on a real control plane: spec.pod and the operator's defaults
(KUBELABEL_OPERATOR_POD_DEFAULTS) reach the pod templates of the API server's Deployment, a sync Job
and a model server's Deployment, and the real scheduler puts each pod on the kwok node its
nodeSelector names, with the ServiceAccount, PriorityClass and labels asked for; a field dropped
from spec.pod is cleared from the Deployment."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from installs import example_project
from operator_process import OperatorProcess
from realcluster import Cluster, condition, eventually

pytestmark = pytest.mark.e2e

DEFAULTS = {
    "imagePullSecrets": [{"name": "regcred"}],
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "labeling", "effect": "NoSchedule"}],
    "labels": {"team": "platform"},
}


@pytest.fixture
def operator_env() -> dict[str, str]:
    return {"KUBELABEL_OPERATOR_POD_DEFAULTS": json.dumps(DEFAULTS)}


@pytest.fixture
def priority_class(cluster: Cluster) -> Iterator[str]:
    """Cluster-scoped, so named for this test alone and deleted after it."""
    name = f"e2e-labeling-{uuid.uuid4().hex[:6]}"
    cluster.apply(
        [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": 1000}]
    )
    yield name
    cluster.run("delete", "priorityclass", name, "--ignore-not-found", check=False)


def nodes(cluster: Cluster) -> list[str]:
    names = sorted(n["metadata"]["name"] for n in cluster.list("nodes", None))
    assert len(names) >= 2, f"the test needs two kwok nodes: {names}"
    return names


def scheduled_pod(cluster: Cluster, namespace: str, selector: str) -> dict[str, Any]:
    return eventually(
        lambda: next((p for p in cluster.list("pods", namespace, selector) if p["spec"].get("nodeName")), None),
        timeout=90,
        what=f"a scheduled pod of {selector}",
    )


def template_spec(cluster: Cluster, kind: str, name: str, namespace: str) -> dict[str, Any]:
    obj = cluster.get(kind, name, namespace) or {}
    return obj.get("spec", {}).get("template", {}).get("spec", {})


def test_spec_pod_and_defaults_reach_every_pod_and_the_scheduler(
    cluster: Cluster, namespace: str, operator: OperatorProcess, priority_class: str
) -> None:
    first, second = nodes(cluster)[:2]
    cluster.apply([{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "annotators"}}], namespace)
    project = copy.deepcopy(example_project())
    project["spec"]["pod"] = {
        "nodeSelector": {"kubernetes.io/hostname": second},
        "serviceAccountName": "annotators",
        "priorityClassName": priority_class,
        "labels": {"team": "vision"},
        "annotations": {"example.com/owner": "vision"},
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"kubelabel.io/project": "sentiment"}},
            }
        ],
    }
    storage = {
        "apiVersion": "kubelabel.io/v1alpha1",
        "kind": "StorageConnection",
        "metadata": {"name": "photos"},
        "spec": {
            "projectRef": {"name": "sentiment"},
            "provider": "s3",
            "bucket": "photos",
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
            "pod": {"nodeSelector": {"kubernetes.io/hostname": first}},
        },
    }
    backend = {
        "apiVersion": "kubelabel.io/v1alpha1",
        "kind": "MLBackend",
        "metadata": {"name": "model"},
        "spec": {
            "projectRef": {"name": "sentiment"},
            "managed": {},
            "pod": {"nodeSelector": {"kubernetes.io/hostname": first}, "tolerations": []},
        },
    }
    cluster.apply([project, storage, backend], namespace)

    # The API server: the project's fields over the defaults (imagePullSecrets, tolerations from the defaults).
    api = eventually(lambda: (t := template_spec(cluster, "deployment", "sentiment-api", namespace)) and t, what="API")
    assert api["nodeSelector"] == {"kubernetes.io/hostname": second}
    assert api["serviceAccountName"] == "annotators" and api["priorityClassName"] == priority_class
    assert api["imagePullSecrets"] == [{"name": "regcred"}] and api["tolerations"] == DEFAULTS["tolerations"]
    assert api["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert api["automountServiceAccountToken"] is False
    pod = scheduled_pod(cluster, namespace, "app.kubernetes.io/component=api,kubelabel.io/project=sentiment")
    assert pod["spec"]["nodeName"] == second
    assert pod["spec"]["serviceAccountName"] == "annotators"
    assert pod["spec"]["priority"] == 1000  # the PriorityClass resolved by admission
    assert pod["metadata"]["labels"]["team"] == "vision"  # the project's labels replace the defaults' whole
    assert pod["metadata"]["annotations"]["example.com/owner"] == "vision"

    # The sync Job: its own spec.pod, the defaults elsewhere, its resources.
    job = eventually(lambda: cluster.get("job", "photos-sync-1", namespace), what="sync Job")
    job_spec = job["spec"]["template"]["spec"]
    assert job_spec["nodeSelector"] == {"kubernetes.io/hostname": first}
    assert job_spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert job["spec"]["template"]["metadata"]["labels"]["team"] == "platform"
    assert job_spec["containers"][0]["resources"]["requests"] == {"cpu": "50m", "memory": "64Mi"}
    assert scheduled_pod(cluster, namespace, "job-name=photos-sync-1")["spec"]["nodeName"] == first

    # The model server: an empty list set on the resource replaces the defaults' tolerations.
    model = eventually(
        lambda: (t := template_spec(cluster, "deployment", "model-model", namespace)) and t, what="model"
    )
    assert model["nodeSelector"] == {"kubernetes.io/hostname": first}
    assert not model.get("tolerations")
    assert scheduled_pod(cluster, namespace, "kubelabel.io/mlbackend=model")["spec"]["nodeName"] == first

    # Dropped from spec.pod: cleared from the Deployment (a merge patch alone would leave them).
    cluster(
        "patch",
        "lproj",
        "sentiment",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"pod":{"nodeSelector":null,"serviceAccountName":null,"topologySpreadConstraints":null,"labels":null,"annotations":null}}}',
    )
    cleared = eventually(
        lambda: (
            (t := template_spec(cluster, "deployment", "sentiment-api", namespace)) and "nodeSelector" not in t and t
        ),
        timeout=30,
        what="nodeSelector cleared",
    )
    assert "serviceAccountName" not in cleared and "serviceAccount" not in cleared
    assert "topologySpreadConstraints" not in cleared
    meta = cluster.get("deployment", "sentiment-api", namespace)["spec"]["template"]["metadata"]
    assert "example.com/owner" not in meta["annotations"]  # the project's own annotation, dropped
    assert meta["labels"]["team"] == "platform"  # the defaults' labels, now that the project sets none
    assert cleared["priorityClassName"] == priority_class and cleared["imagePullSecrets"] == [{"name": "regcred"}]


def test_the_operators_labels_are_refused_with_a_reason(cluster: Cluster, namespace: str) -> None:
    project = copy.deepcopy(example_project())
    project["spec"]["pod"] = {"labels": {"kubelabel.io/project": "another"}}
    result = cluster.run("apply", "-n", namespace, "-f", "-", stdin=json.dumps(project), check=False)
    assert result.returncode != 0
    assert "must not set the operator's keys" in result.stderr, result.stderr
    assert cluster.get("lproj", "sentiment", namespace) is None


def test_an_affinity_the_api_server_refuses_is_reported_in_status(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """Affinity is passed through as written; the API server's verdict on the Deployment is the check."""
    project = copy.deepcopy(example_project())
    empty_terms = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}
    project["spec"]["pod"] = {"affinity": {"nodeAffinity": empty_terms}}
    cluster.apply([project], namespace)
    degraded = eventually(
        lambda: (
            (d := condition(cluster.get("lproj", "sentiment", namespace), "Degraded")).get("status") == "True" and d
        ),
        timeout=30,
        what="Degraded",
    )
    assert degraded["reason"] == "InvalidChild"
    assert "nodeSelectorTerms" in degraded["message"], degraded["message"]
    assert cluster.get("deployment", "sentiment-api", namespace) is None
