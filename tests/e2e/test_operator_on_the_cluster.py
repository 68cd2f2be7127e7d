"""The operator on a real control plane, installed as manifests/base installs it (its ServiceAccount,
its ClusterRole): the examples applied with kubectl, readiness from real Deployments, a rolling
update, a sync Job that really runs, an ML backend registered with a real API server, and the
garbage collector removing a deleted project's children.

The project's API server and the sync Job run here as processes, from the pod specs the operator
wrote (tests/e2e/kubelet.py); the operator reaches the API server through its documented
KUBELABEL_OPERATOR_API_URL_TEMPLATE (an operator outside the cluster uses it the same way).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubelet import LocalContainer, report_exit, run_container
from operator_process import OperatorProcess
from realcluster import ROOT, Cluster, condition, eventually, ready

from tests.support.apiserver import TEST_EGRESS_ALLOW
from tests.support.net import free_port, wait_for_port
from tests.support.processes import stop_process

pytestmark = pytest.mark.e2e
EXAMPLES = ROOT / "manifests" / "examples"
# Test processes talk to each other on 127.0.0.1: the outbound-address policy allows loopback here.
LOOPBACK_ALLOWED = {"KUBELABEL_EGRESS_ALLOW": TEST_EGRESS_ALLOW}


@pytest.fixture
def api_port() -> int:
    return free_port()


@pytest.fixture
def operator_env(api_port: int) -> dict[str, str]:
    """The project APIs at api_port (where this module runs them), loopback targets allowed."""
    return {"KUBELABEL_OPERATOR_API_URL_TEMPLATE": f"http://127.0.0.1:{api_port}", **LOOPBACK_ALLOWED}


def project_pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    pods = cluster.list("pods", namespace, selector=f"kubelabel.io/project={name},app.kubernetes.io/component=api")
    running = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert running, "no API pod"
    return sorted(running, key=lambda p: p["metadata"]["creationTimestamp"])[-1]


def serve_project(cluster: Cluster, namespace: str, name: str, port: int, workdir: Path) -> LocalContainer:
    """The project's API pod, run here: its migrate init container, then its server."""
    pod = project_pod(cluster, namespace, name)
    data = workdir / "data"
    migrate = run_container(cluster, pod, "migrate", workdir / "migrate", volumes={"data": data}, init=True)
    assert migrate.wait() == 0, migrate.output()
    server = run_container(
        cluster, pod, "api", workdir / "api", port=port, volumes={"data": data}, extra_env=LOOPBACK_ALLOWED
    )
    wait_for_port(port, timeout=60)
    return server


def admin_token(cluster: Cluster, namespace: str, name: str) -> str:
    secret = eventually(lambda: cluster.get("secret", f"{name}-admin-token", namespace), what="admin token")
    return base64.b64decode(secret["data"]["token"]).decode()


def test_a_project_is_ready_only_once_its_pods_are(cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    nodes = [n["metadata"]["name"] for n in cluster.list("nodes", None)]
    for node in nodes:
        cluster("cordon", node)
    try:
        cluster("apply", "-n", namespace, "-f", str(EXAMPLES / "01-minimal-project.yaml"))
        deployment = eventually(lambda: cluster.get("deployment", "sentiment-api", namespace), what="Deployment")
        pending = eventually(
            lambda: [p for p in cluster.list("pods", namespace) if p["status"].get("phase") == "Pending"], what="a pod"
        )
        assert pending
        # The real scheduler's verdict reaches the status, with its cause.
        # (For a moment the scheduler may first name the claim the provisioner has not bound yet.)
        project = eventually(
            lambda: (
                (p := cluster.get("lproj", "sentiment", namespace))
                and condition(p, "Ready").get("reason") == "Unschedulable"
                and "node(s) were unschedulable" in condition(p, "Ready")["message"]
                and p
            ),
            timeout=90,
            what="Unschedulable, with the scheduler's message, in status",
        )
        assert not ready(project), "Ready while no pod can be scheduled"
    finally:
        for node in nodes:
            cluster("uncordon", node)
    project = eventually(lambda: (p := cluster.get("lproj", "sentiment", namespace)) and ready(p) and p, timeout=90)
    deployment = cluster.get("deployment", "sentiment-api", namespace)
    assert deployment and deployment["status"].get("readyReplicas") == 1
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == project["metadata"]["uid"]
    cluster("delete", "lproj", "sentiment", "-n", namespace, "--wait=true", "--timeout=60s")


def test_examples_roll_sync_register_and_are_collected(
    cluster: Cluster, namespace: str, operator: OperatorProcess, api_port: int, tmp_path: Path
) -> None:
    for example in sorted(EXAMPLES.glob("*.yaml")):
        cluster("apply", "-n", namespace, "-f", str(example))
    for name in ("sentiment", "images"):
        eventually(lambda n=name: ready(cluster.get("lproj", n, namespace)), timeout=120, what=f"{name} Ready")
    images = cluster.get("deployment", "images-api", namespace)
    assert images and images["spec"]["replicas"] == 2 and images["status"].get("readyReplicas") == 2
    assert cluster.get("deployment", "images-worker", namespace), "Redis configured: a worker Deployment"
    assert cluster.get("ingress", "images-api", namespace)
    # 03: the sync Job exists (its pod waits: nothing runs it here); 04: the managed model's children.
    eventually(lambda: cluster.list("jobs", namespace, selector="kubelabel.io/storage=street-photos"), what="Job")
    for kind, child in (("deployment", "sentiment-model-model"), ("service", "sentiment-model-model")):
        assert eventually(lambda k=kind, c=child: cluster.get(k, c, namespace), what=child)

    # A spec change rolls the API server's Deployment: a new ReplicaSet, rolled out by the real controller.
    old_hash = cluster.get("deployment", "sentiment-api", namespace)["spec"]["template"]["metadata"]["annotations"][
        "kubelabel.io/config-hash"
    ]
    cluster("patch", "lproj", "sentiment", "-n", namespace, "--type=merge", "-p", '{"spec":{"title":"Second round"}}')
    rolled = eventually(
        lambda: (
            (d := cluster.get("deployment", "sentiment-api", namespace))
            and d["spec"]["template"]["metadata"]["annotations"]["kubelabel.io/config-hash"] != old_hash
            and d
        ),
        what="a new pod template",
    )
    eventually(
        lambda: (
            (p := cluster.get("lproj", "sentiment", namespace))
            and p["status"].get("observedGeneration") == p["metadata"]["generation"]
            and ready(p)
        ),
        timeout=90,
        what="Ready at the new generation",
    )
    replica_sets = cluster.list(
        "replicasets", namespace, selector="kubelabel.io/project=sentiment,app.kubernetes.io/component=api"
    )
    assert len(replica_sets) == 2, [r["metadata"]["name"] for r in replica_sets]
    assert rolled["metadata"]["generation"] >= 2

    # The project's API server, really running: the operator's stats calls reach it.
    token = admin_token(cluster, namespace, "sentiment")
    server = serve_project(cluster, namespace, "sentiment", api_port, tmp_path / "api")
    try:
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Token {token}"}, timeout=30
        )
        project = api.get("/api/projects/1/").json()
        assert project["title"] == "Second round", "the API server runs the project file the operator wrote"
        assert api.post("/api/projects/1/import", json=[{"text": f"review {i}"} for i in range(7)]).status_code == 201
        eventually(
            lambda: (p := cluster.get("lproj", "sentiment", namespace)) and p["status"].get("tasks") == 7,
            what="task count in status",
        )
        _sync_from_a_bucket(cluster, namespace, api, api_port, tmp_path)
        _register_a_model(cluster, namespace, api, tmp_path)
    finally:
        server.stop()

    # Deleting the project: the garbage collector removes what it owns (the operator's RBAC cannot
    # delete ConfigMaps or Secrets, so their disappearance is the collector's work).
    project_uid = cluster.get("lproj", "sentiment", namespace)["metadata"]["uid"]
    owned = [
        ("configmap", "sentiment-config"),
        ("secret", "sentiment-admin-token"),
        ("deployment", "sentiment-api"),
        ("service", "sentiment-api"),
    ]
    for kind, name in owned:
        obj = cluster.get(kind, name, namespace)
        assert obj and obj["metadata"]["ownerReferences"][0]["uid"] == project_uid, (kind, name)
    cluster("delete", "lproj", "sentiment", "-n", namespace, "--wait=true", "--timeout=60s")
    for kind, name in owned:
        eventually(
            lambda k=kind, n=name: cluster.get(k, n, namespace) is None, timeout=60, what=f"{kind}/{name} collected"
        )
    # But the data: deletionPolicy Retain (the default) keeps the SQLite volume (tests/e2e/test_deletion_policy.py).
    assert cluster.get("persistentvolumeclaim", "sentiment-data", namespace) is not None
    cluster("delete", "-n", namespace, "-f", str(EXAMPLES), "--ignore-not-found", "--wait=true", "--timeout=90s")


def _sync_from_a_bucket(cluster: Cluster, namespace: str, api: httpx.Client, api_port: int, tmp_path: Path) -> None:
    """A StorageConnection's Job, run from its pod spec: the real `kubelabel sync` against an S3 emulator."""
    import boto3

    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id="k",
            aws_secret_access_key="s",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="reviews")
        for i in range(5):
            s3.put_object(Bucket="reviews", Key=f"batch/{i}.json", Body=json.dumps([{"text": f"bucket {i}"}]).encode())
        cluster.apply(
            [
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "reviews-s3"},
                 "stringData": {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}},
                {"apiVersion": "kubelabel.io/v1alpha1", "kind": "StorageConnection", "metadata": {"name": "reviews"},
                 "spec": {"projectRef": {"name": "sentiment"}, "provider": "s3", "bucket": "reviews",
                          "prefix": "batch/", "endpoint": f"http://127.0.0.1:{port}", "region": "us-east-1",
                          "mode": "tasks", "credentialsSecretRef": {"name": "reviews-s3"}, "syncRequest": "1"}},
            ],
            namespace=namespace,
        )  # fmt: skip
        pod = eventually(
            lambda: [
                p
                for p in cluster.list("pods", namespace, selector="kubelabel.io/storage=reviews")
                if p["spec"].get("nodeName")
            ],
            what="the sync Job's pod",
        )[0]
        job = run_container(
            cluster,
            pod,
            pod["spec"]["containers"][0]["name"],
            tmp_path / "sync",
            extra_env={"KUBELABEL_API_URL": f"http://127.0.0.1:{api_port}", **LOOPBACK_ALLOWED},
        )
        assert report_exit(cluster, pod, job) == 0, job.output()
        storage = eventually(
            lambda: (
                (s := cluster.get("lstore", "reviews", namespace)) and s["status"].get("syncState") == "completed" and s
            ),
            what="completed sync in status",
        )
        assert storage["status"]["lastSyncCount"] == 5
        assert api.get("/api/projects/1/").json()["task_number"] == 12
    finally:
        stop_process(moto)


def _register_a_model(cluster: Cluster, namespace: str, api: httpx.Client, tmp_path: Path) -> None:
    """An external MLBackend (the bundled model server, here): health-checked and registered with the API."""
    port = free_port()
    model = subprocess.Popen(
        [str(Path(sys.executable).parent / "kubelabel"), "model-server", "--port", str(port)],
        env={"PATH": "/usr/bin:/bin", "MODEL_DIR": str(tmp_path / "models"), **LOOPBACK_ALLOWED},
        stdout=open(tmp_path / "model.log", "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=60)
        cluster.apply(
            [{"apiVersion": "kubelabel.io/v1alpha1", "kind": "MLBackend", "metadata": {"name": "local-model"},
              "spec": {"projectRef": {"name": "sentiment"}, "external": {"url": f"http://127.0.0.1:{port}"}}}],
            namespace=namespace,
        )  # fmt: skip
        backend = eventually(
            lambda: (b := cluster.get("mlb", "local-model", namespace)) and ready(b) and b,
            timeout=60,
            what="backend Ready",
        )
        assert backend["status"]["modelVersion"]
        registered = api.get("/api/ml/", params={"project": 1}).json()
        assert [b["url"] for b in registered] == [f"http://127.0.0.1:{port}"]
    finally:
        stop_process(model)
