"""spec.backup and spec.restoreFrom: the CronJob and restore Job builders, and the whole project
reconcile against an in-memory API (create, merge patch, delete, label lists): the restore Job runs
before any API Deployment exists, the CronJob follows spec.backup, and the Jobs' termination messages
become status.lastBackup and the BackedUp / Restored conditions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fake_k8s import FakeK8s
from kubelabel_operator.builders import backup as build
from kubelabel_operator.builders.meta import Owner, selector
from kubelabel_operator.k8s.resources import CRONJOBS, DEPLOYMENTS, JOBS, PODS, SECRETS, STORAGES
from kubelabel_operator.models import LabelingProjectSpec
from kubelabel_operator.reconcilers.project import reconcile_project
from pydantic import ValidationError

NOW = "2026-12-06T04:00:00Z"
BUCKET = {"bucket": "s3://backups", "endpoint": "http://minio:9000", "credentialsSecretRef": {"name": "s3"}}
BACKUP = {"schedule": "0 3 * * *", "storage": BUCKET, "keep": 5}
POSTGRES = {"type": "postgres", "postgres": {"secretRef": {"name": "db", "key": "dsn"}}}


def spec(**extra: Any) -> LabelingProjectSpec:
    return LabelingProjectSpec.model_validate({"title": "T", "labelConfig": {"inline": "<View/>"}, **extra})


def owner() -> Owner:
    return Owner(kind="LabelingProject", name="p", namespace="ns", uid="uid-1")


def body(generation: int = 1, status: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubelabel.io/v1alpha1",
        "kind": "LabelingProject",
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1", "generation": generation},
        "spec": {"title": "T", "labelConfig": {"inline": "<View/>"}, **extra},
        "status": status or {},
    }


def finished_job(k8s: FakeK8s, name: str, component: str, ok: bool, when: str, result: dict[str, Any]) -> None:
    """A Job of `component` that finished at `when`, and its pod's termination message."""
    k8s.put(
        JOBS,
        {
            "metadata": {
                "name": name,
                "labels": selector("p", component),
                # The restore Job is the project's; a backup Job is its CronJob's.
                "ownerReferences": [{"uid": "uid-1" if component == "restore" else "cron", "controller": True}],
            },
            "status": {
                "conditions": [{"type": "Complete" if ok else "Failed", "status": "True", "lastTransitionTime": when}],
                **({"completionTime": when} if ok else {}),
            },
        },
    )
    state = {"terminated": {"exitCode": 0 if ok else 1, "message": json.dumps(result)}}
    k8s.put(
        PODS,
        {
            "metadata": {"name": f"{name}-x", "labels": {"job-name": name}, "creationTimestamp": when},
            "status": {"containerStatuses": [{"name": component, "state": state}]},
        },
    )


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


async def reconcile(k8s: FakeK8s, project: dict[str, Any]) -> dict[str, Any]:
    """One reconcile, its status written back into `project` (as the handler's patch does)."""
    outcome = await reconcile_project(k8s, project, "kubelabel:1", NOW)  # type: ignore[arg-type]
    project["status"] = outcome.status
    project["events"] = [(e.type, e.reason, e.message) for e in outcome.events]
    return project


@pytest.fixture
def k8s() -> FakeK8s:
    fake = FakeK8s()
    fake.put(SECRETS, {"metadata": {"name": "s3"}, "data": {}})
    fake.put(SECRETS, {"metadata": {"name": "db"}, "data": {"dsn": "cG9zdGdyZXM6Ly8="}})
    return fake


# --- models ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backup", "message"),
    [
        ({"schedule": "daily", "storage": BUCKET}, "cron expression"),
        ({"schedule": "@daily", "storage": {}}, "exactly one of"),
        ({"schedule": "@daily", "storage": {"bucket": "s3://b", "storageConnection": "s"}}, "exactly one of"),
        ({"schedule": "@daily", "storage": {"storageConnection": "s", "region": "eu"}}, "leave them out"),
        ({"schedule": "@daily", "storage": {"bucket": "s3://b/folder"}}, "pattern"),
        ({"schedule": "@daily", "storage": BUCKET, "keep": 0}, "greater than or equal"),
    ],
)
def test_bad_backup_specs_are_refused_with_the_field(backup: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(backup=backup)


def test_restore_from_needs_the_backup_storage() -> None:
    with pytest.raises(ValidationError, match="set spec.backup"):
        spec(restoreFrom="s3://backups/x/20261206T031803Z-c8e53309/")


# --- builders --------------------------------------------------------------------------------------


def test_cronjob_runs_backup_with_the_api_servers_database_and_the_sync_jobs_bucket_settings() -> None:
    bucket = build.Bucket("s3://backups/kubelabel-backups/ns/p", {"endpoint": "http://minio:9000"}, "s3")
    cron = build.backup_cronjob(owner(), spec(backup=BACKUP), "kubelabel:1", bucket)
    assert cron["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert cron["spec"]["schedule"] == "0 3 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["successfulJobsHistoryLimit"] == cron["spec"]["failedJobsHistoryLimit"] == 3
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["backup", "--to", "s3://backups/kubelabel-backups/ns/p", "--keep", "5"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DATABASE_URL"] == "sqlite:////data/kubelabel.db" and env["KUBELABEL_DATA_DIR"] == "/data"
    assert json.loads(env["KUBELABEL_STORAGE_SPEC"]) == {"endpoint": "http://minio:9000"}
    assert env["KUBELABEL_RESULT_FILE"] == container["terminationMessagePath"] == "/dev/termination-log"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "p-data"
    assert volumes["credentials"]["secret"]["secretName"] == "s3"
    # ReadWriteOnce: on the API pod's node.
    (term,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"


def test_postgres_backup_reads_the_dsn_secret_and_mounts_no_volume() -> None:
    bucket = build.Bucket("s3://backups/x", {}, None)
    cron = build.backup_cronjob(owner(), spec(backup=BACKUP, database=POSTGRES), "img", bucket)
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "dsn"}
    assert [v["name"] for v in pod["volumes"]] == ["tmp"] and "affinity" not in pod


def test_placement_from_spec_pod_reaches_the_backup_pod_and_keeps_the_same_node_rule() -> None:
    node_affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}
    project = spec(backup=BACKUP, pod={"nodeSelector": {"pool": "data"}, "affinity": node_affinity})
    bucket = build.Bucket("s3://backups/x", {}, None)
    pod = build.backup_cronjob(owner(), project, "img", bucket)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "data"}
    assert set(pod["affinity"]) == {"nodeAffinity", "podAffinity"}
    again = build.backup_cronjob(owner(), project, "img", bucket)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert again == pod, "building twice must not add the same-node rule twice (the spec's dict is not mutated)"


# --- reconcile -------------------------------------------------------------------------------------


async def test_backup_cronjob_follows_spec_backup_and_jobs_fill_last_backup(k8s: FakeK8s) -> None:
    project = await reconcile(k8s, body(backup=BACKUP))
    (cron,) = k8s.kind(CRONJOBS)
    assert cron["metadata"]["name"] == "p-backup"
    assert conditions(project["status"])["BackedUp"]["status"] == "Unknown"
    assert conditions(project["status"])["Ready"]["reason"] == "Starting"  # the project itself is unaffected

    uri = "s3://backups/kubelabel-backups/ns/p/20261206T030000Z-0a1b2c3d/"
    finished_job(k8s, "p-backup-1", "backup", True, "2026-12-06T03:00:09Z", {"status": "completed", "uri": uri,
                                                                          "bytes": 1234})  # fmt: skip
    project = await reconcile(k8s, project)
    assert project["status"]["lastBackup"] == {"time": "2026-12-06T03:00:09Z", "size": 1234, "location": uri}
    backed = conditions(project["status"])["BackedUp"]
    assert backed["status"] == "True" and backed["reason"] == "BackupCompleted" and uri in backed["message"]
    assert ("Normal", "BackupCompleted", f"backed up to {uri} (1234 bytes)") in project["events"]

    # A later run fails: the condition says why (the pod's message), lastBackup stays the good one.
    failed = {"status": "failed", "message": "s3://backups: AccessDenied"}
    finished_job(k8s, "p-backup-2", "backup", False, "2026-12-07T03:00:05Z", failed)
    project = await reconcile(k8s, project)
    backed = conditions(project["status"])["BackedUp"]
    assert backed["status"] == "False" and backed["reason"] == "BackupFailed" and "AccessDenied" in backed["message"]
    assert project["status"]["lastBackup"]["location"] == uri
    assert any(e[:2] == ("Warning", "BackupFailed") for e in project["events"])
    assert conditions(project["status"])["Degraded"]["status"] == "False"

    # spec.backup removed: the CronJob goes, and so does the condition.
    del project["spec"]["backup"]
    project = await reconcile(k8s, project)
    assert k8s.kind(CRONJOBS) == [] and "BackedUp" not in conditions(project["status"])


async def test_backup_through_a_storage_connection_uses_its_bucket_endpoint_and_secret(k8s: FakeK8s) -> None:
    k8s.put(STORAGES, {"metadata": {"name": "archive"}, "spec": {
        "projectRef": {"name": "other"}, "provider": "gcs", "bucket": "arch", "direction": "export", "mode": "tasks",
        "endpoint": "http://gcs:4443", "credentialsSecretRef": {"name": "s3"}}})  # fmt: skip
    backup = {"schedule": "@daily", "storage": {"storageConnection": "archive"}, "prefix": "team/p"}
    await reconcile(k8s, body(backup=backup))
    (cron,) = k8s.kind(CRONJOBS)
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:3] == ["backup", "--to", "gs://arch/team/p"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert json.loads(env["KUBELABEL_STORAGE_SPEC"]) == {"endpoint": "http://gcs:4443"}

    # An import storage whose prefix holds the backups would sync them as tasks: refused, named.
    k8s.put(STORAGES, {"metadata": {"name": "archive"}, "spec": {
        "projectRef": {"name": "other"}, "provider": "gcs", "bucket": "arch", "prefix": "team/"}})  # fmt: skip
    project = await reconcile(k8s, body(backup=backup))
    backed = conditions(project["status"])["BackedUp"]
    assert backed["reason"] == "BackupPrefixOverlap" and "spec.backup.prefix" in backed["message"]
    project = await reconcile(k8s, body(backup={**backup, "storage": {"storageConnection": "gone"}}))
    assert conditions(project["status"])["BackedUp"]["reason"] == "StorageConnectionMissing"


async def test_restore_runs_before_the_api_server_and_only_once(k8s: FakeK8s) -> None:
    uri = "s3://backups/kubelabel-backups/ns/old/20261206T030000Z-0a1b2c3d/"
    project = await reconcile(k8s, body(backup=BACKUP, restoreFrom=uri))
    (job,) = k8s.kind(JOBS)
    assert job["metadata"]["name"] == "p-restore"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["restore", "--from", uri]
    assert job["spec"]["template"]["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"] == "p-data"
    assert k8s.kind(DEPLOYMENTS) == [], "the API server must not start before the restore"
    assert conditions(project["status"])["Progressing"]["reason"] == "Restoring"
    assert conditions(project["status"])["Restored"]["status"] == "False"

    # Failed: Degraded with the pod's message, still no API server.
    k8s.objects.pop((JOBS.plural, "p-restore"))
    finished_job(k8s, "p-restore", "restore", False, NOW, {"status": "failed", "message": "checksum mismatch"})
    project = await reconcile(k8s, project)
    degraded = conditions(project["status"])["Degraded"]
    assert degraded["status"] == "True" and degraded["reason"] == "RestoreFailed"
    assert "checksum mismatch" in degraded["message"] and k8s.kind(DEPLOYMENTS) == []

    # Succeeded: Restored, and the API server is created.
    k8s.objects.pop((JOBS.plural, "p-restore"))
    finished_job(k8s, "p-restore", "restore", True, NOW, {"status": "completed", "uri": uri, "rows": 42})
    project = await reconcile(k8s, project)
    restored = conditions(project["status"])["Restored"]
    assert restored["status"] == "True" and "42 rows" in restored["message"]
    assert [d["metadata"]["name"] for d in k8s.kind(DEPLOYMENTS)] == ["p-api"]
    assert ("Normal", "Restored", restored["message"]) in project["events"]

    # A status write from a stale read (a Deployment event handled meanwhile) put the old condition back:
    # the finished Job still says what happened.
    project["status"]["conditions"] = [c for c in project["status"]["conditions"] if c["type"] != "Restored"] + [
        {"type": "Restored", "status": "False", "reason": "Restoring", "message": "", "lastTransitionTime": NOW}
    ]
    project = await reconcile(k8s, project)
    assert conditions(project["status"])["Restored"]["status"] == "True"
    assert len(k8s.kind(DEPLOYMENTS)) == 1

    # Never again: the Job gone (its TTL), the condition kept through later reconciles.
    k8s.objects.pop((JOBS.plural, "p-restore"))
    project = await reconcile(k8s, project)
    assert not [j for j in k8s.kind(JOBS) if j["metadata"]["name"] == "p-restore"]
    assert conditions(project["status"])["Restored"]["status"] == "True"
    # Status lost too (a backup of the cluster without status): the Deployment's existence suffices.
    project["status"] = {}
    project = await reconcile(k8s, project)
    assert not [j for j in k8s.kind(JOBS) if j["metadata"]["name"] == "p-restore"]
