"""spec.backup and spec.restoreFrom on a real control plane, with the operator's manifests/base RBAC.

A project with spec.backup gets its CronJob (schedule, env, volumes as the API server has them); a Job
made from the CronJob's template, as `kubectl create job --from=cronjob/...` makes it, is run here from
its pod spec (tests/e2e/kubelet.py) against moto's S3 server, and the project's status.lastBackup
shows the backup's URI and size. A second project with spec.restoreFrom waits for its restore Job
(also run here) before its API Deployment exists, and then serves the restored tasks.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from installs import example_project
from kubelet import LocalContainer, report_exit, run_container
from operator_process import OperatorProcess
from realcluster import Cluster, condition, eventually

from tests.integration.storage.conftest import moto_s3  # noqa: F401 - the S3 emulator (127.0.0.1)
from tests.support.apiserver import TEST_EGRESS_ALLOW
from tests.support.net import free_port, wait_for_port

pytestmark = pytest.mark.e2e
LOOPBACK_ALLOWED = {"KUBELABEL_EGRESS_ALLOW": TEST_EGRESS_ALLOW}  # moto and the API listen on 127.0.0.1
TASKS = 7


def project(name: str, bucket: str, endpoint: str, **spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(example_project())
    body["metadata"] = {"name": name}
    storage = {"bucket": f"s3://{bucket}", "endpoint": endpoint, "region": "us-east-1",
               "credentialsSecretRef": {"name": "backup-s3"}}  # fmt: skip
    body["spec"].update(backup={"schedule": "17 3 * * *", "storage": storage, "keep": 2}, **spec)
    return body


def job_pod(cluster: Cluster, namespace: str, job: str) -> dict[str, Any]:
    """The Job's pod once the scheduler placed it."""
    pods = eventually(
        lambda: [p for p in cluster.list("pods", namespace, selector=f"job-name={job}") if p["spec"].get("nodeName")],
        what=f"the pod of Job {job}",
    )
    return pods[0]


def serve(
    cluster: Cluster, namespace: str, name: str, data: Path, workdir: Path
) -> tuple[LocalContainer, httpx.Client]:
    """The project's API pod run here (its migrate init container, then the server) on `data`."""
    api_pods = f"kubelabel.io/project={name},app.kubernetes.io/component=api"
    pods = eventually(lambda: cluster.list("pods", namespace, selector=api_pods), what=f"{name}'s API pod")
    pod = pods[0]
    migrate = run_container(cluster, pod, "migrate", workdir / "migrate", volumes={"data": data}, init=True)
    assert migrate.wait() == 0, migrate.output()
    port = free_port()
    server = run_container(
        cluster, pod, "api", workdir / "api", port=port, volumes={"data": data}, extra_env=LOOPBACK_ALLOWED
    )
    wait_for_port(port, timeout=60)
    secret = eventually(lambda: cluster.get("secret", f"{name}-admin-token", namespace), what="admin token")
    token = base64.b64decode(secret["data"]["token"]).decode()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Token {token}"}, timeout=30)
    return server, client


def test_backup_cronjob_runs_into_last_backup_and_a_new_project_restores_it(
    cluster: Cluster,
    namespace: str,
    operator: OperatorProcess,
    moto_s3,  # noqa: F811
    tmp_path: Path,
) -> None:
    bucket = moto_s3.new_bucket()
    key = moto_s3.credentials.aws_access_key_id or ""
    secret = moto_s3.credentials.aws_secret_access_key or ""
    cluster.apply(
        [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "backup-s3"},
          "stringData": {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}},
         project("first", bucket, moto_s3.endpoint)],
        namespace=namespace,
    )  # fmt: skip

    # The CronJob, as the project's spec says.
    cron = eventually(lambda: cluster.get("cronjob", "first-backup", namespace), what="the backup CronJob")
    uid = cluster.get("lproj", "first", namespace)["metadata"]["uid"]
    assert cron["metadata"]["ownerReferences"][0]["uid"] == uid
    assert cron["spec"]["schedule"] == "17 3 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod_spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    prefix = f"s3://{bucket}/kubelabel-backups/{namespace}/first"
    assert container["args"] == ["backup", "--to", prefix, "--keep", "2"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DATABASE_URL"] == "sqlite:////data/kubelabel.db" and moto_s3.endpoint in env["KUBELABEL_STORAGE_SPEC"]
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "first-data"
    assert volumes["credentials"]["secret"]["secretName"] == "backup-s3"

    # Tasks in the first project's database (its API pod, run here).
    first_data = tmp_path / "first-data"
    server, api = serve(cluster, namespace, "first", first_data, tmp_path / "first")
    try:
        response = api.post("/api/projects/1/import", json=[{"text": f"review {i}"} for i in range(TASKS)])
        assert response.status_code == 201, response.text
    finally:
        server.stop()

    # A backup now, from the CronJob's template, run on the project's data.
    cluster("create", "job", "first-backup-now", "--from=cronjob/first-backup", "-n", namespace)
    pod = job_pod(cluster, namespace, "first-backup-now")
    backup = run_container(
        cluster, pod, "backup", tmp_path / "backup", volumes={"data": first_data}, extra_env=LOOPBACK_ALLOWED
    )
    assert report_exit(cluster, pod, backup) == 0, backup.output()
    first = eventually(
        lambda: (p := cluster.get("lproj", "first", namespace)) and (p["status"].get("lastBackup") or {}) and p,
        what="status.lastBackup",
    )
    last = first["status"]["lastBackup"]
    assert last["location"].startswith(prefix + "/") and last["location"].endswith("/") and last["size"] > 0
    assert condition(first, "BackedUp")["status"] == "True"
    s3 = boto3.client("s3", endpoint_url=moto_s3.endpoint, region_name="us-east-1", aws_access_key_id=key,
                      aws_secret_access_key=secret)  # fmt: skip
    manifest = last["location"].removeprefix(f"s3://{bucket}/") + "manifest.json"
    assert s3.head_object(Bucket=bucket, Key=manifest)["ContentLength"] > 0

    # A new project restored from it: its restore Job first, and no API server before it succeeded.
    cluster.apply([project("second", bucket, moto_s3.endpoint, restoreFrom=last["location"])], namespace=namespace)
    pod = job_pod(cluster, namespace, "second-restore")
    second = cluster.get("lproj", "second", namespace)
    assert condition(second, "Progressing").get("reason") == "Restoring", second.get("status")
    assert cluster.get("deployment", "second-api", namespace) is None
    second_data = tmp_path / "second-data"
    restore = run_container(
        cluster, pod, "restore", tmp_path / "restore", volumes={"data": second_data}, extra_env=LOOPBACK_ALLOWED
    )
    assert report_exit(cluster, pod, restore) == 0, restore.output()
    eventually(lambda: cluster.get("deployment", "second-api", namespace), what="second-api after the restore")
    second = eventually(
        lambda: (
            (p := cluster.get("lproj", "second", namespace)) and condition(p, "Restored").get("status") == "True" and p
        ),
        what="Restored",
    )
    assert last["location"] in condition(second, "Restored")["message"]
    server, api = serve(cluster, namespace, "second", second_data, tmp_path / "second")
    try:
        tasks = api.get("/api/projects/1/").json()["task_number"]
        assert tasks == TASKS
    finally:
        server.stop()
