"""StorageConnection: sync Jobs started and followed into status; missing references reported."""

from __future__ import annotations

import json
from typing import Any

from kubelabel_operator.k8s import K8s
from kubelabel_operator.k8s.resources import BY_KIND, CRONJOBS, JOBS, PODS, STORAGES
from operator_support import NS, condition, eventually, namespaced


async def apply(client: K8s, docs: list[dict[str, Any]]) -> None:
    for doc in namespaced(docs):
        await client.create(BY_KIND[doc["kind"]], NS, doc)


async def storage_where(client: K8s, name: str, predicate: Any) -> dict[str, Any] | None:
    obj = await client.get(STORAGES, NS, name)
    return obj if obj and obj.get("status") and predicate(obj) else None


async def finish_job(client: K8s, job: str, result: dict[str, Any], failed: bool) -> None:
    """What the Job controller and the kubelet would leave behind for a finished sync."""
    exit_code = 1 if failed else 0
    await client.create(
        PODS,
        NS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{job}-abcde", "labels": {"job-name": job}},
            "spec": {"containers": [{"name": "sync", "image": "kubelabel:test"}]},
            "status": {
                "phase": "Failed" if failed else "Succeeded",
                "containerStatuses": [
                    {"name": "sync", "state": {"terminated": {"exitCode": exit_code, "message": json.dumps(result)}}}
                ],
            },
        },
    )
    cond = {"type": "Failed" if failed else "Complete", "status": "True"}
    if failed:
        cond |= {"reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}
    status = {
        "startTime": "2026-11-27T10:00:00Z",
        "conditions": [cond],
        **({"failed": 3} if failed else {"succeeded": 1, "completionTime": "2026-11-27T10:00:42Z"}),
    }
    await client.patch_status(JOBS, NS, job, status)


async def test_sync_job_lifecycle_failure_then_on_demand_success(kube, client, operator, example):
    await apply(client, example("02-postgres-project.yaml") + example("03-s3-storage.yaml"))

    job = await eventually(lambda: client.get(JOBS, NS, "street-photos-sync-1"))
    assert job["metadata"]["ownerReferences"][0]["name"] == "street-photos"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "kubelabel:test" and container["args"] == ["sync"]
    storage = await eventually(
        lambda: storage_where(client, "street-photos", lambda s: s["status"].get("syncState") == "queued")
    )
    assert storage["status"]["lastJob"] == "street-photos-sync-1"
    assert condition(storage, "Progressing")["reason"] == "SyncQueued"

    await client.patch_status(JOBS, NS, "street-photos-sync-1", {"active": 1, "startTime": "2026-11-27T10:00:00Z"})
    await eventually(
        lambda: storage_where(client, "street-photos", lambda s: s["status"]["syncState"] == "in_progress")
    )

    failure = {"status": "failed", "count": 0, "errors": 0, "message": "AccessDenied: s3://street-photos/2026/"}
    await finish_job(client, "street-photos-sync-1", failure, failed=True)
    storage = await eventually(
        lambda: storage_where(client, "street-photos", lambda s: s["status"]["syncState"] == "failed")
    )
    assert storage["status"]["message"] == "AccessDenied: s3://street-photos/2026/"
    assert condition(storage, "Degraded")["status"] == "True"
    assert condition(storage, "Degraded")["reason"] == "SyncFailed"
    assert condition(storage, "Ready")["status"] == "False"

    # A new spec.syncRequest value starts a new Job; its success clears the failure.
    await client.patch(STORAGES, NS, "street-photos", {"spec": {"syncRequest": "2"}})
    job2 = await eventually(lambda: client.get(JOBS, NS, "street-photos-sync-2"))
    assert job2["metadata"]["annotations"]["kubelabel.io/sync-request"] == "2"
    await eventually(lambda: storage_where(client, "street-photos", lambda s: s["status"]["syncState"] == "queued"))
    await finish_job(
        client, "street-photos-sync-2", {"status": "completed", "count": 41, "errors": 0, "message": "41 tasks"}, False
    )
    storage = await eventually(
        lambda: storage_where(client, "street-photos", lambda s: s["status"]["syncState"] == "completed")
    )
    assert storage["status"]["lastSyncCount"] == 41
    assert storage["status"]["lastSyncTime"] == "2026-11-27T10:00:42Z"
    assert storage["status"]["lastSyncDurationSeconds"] == 42.0
    assert condition(storage, "Ready")["status"] == "True"
    assert condition(storage, "Degraded")["status"] == "False"
    # Exactly two Jobs: no duplicates from the many events in between.
    jobs = [j["metadata"]["name"] for j in await client.list(JOBS, NS)]
    assert sorted(jobs) == ["street-photos-sync-1", "street-photos-sync-2"]


async def test_missing_secret_and_project_are_named(kube, client, operator, example):
    storage = namespaced(example("03-s3-storage.yaml"))[1]
    await client.create(STORAGES, NS, storage)
    obj = await eventually(
        lambda: storage_where(client, "street-photos", lambda s: condition(s, "Degraded").get("status") == "True")
    )
    assert condition(obj, "Degraded")["reason"] == "ProjectMissing"
    assert "LabelingProject 'images' not found" in condition(obj, "Degraded")["message"]

    await apply(client, example("02-postgres-project.yaml"))
    obj = await eventually(
        lambda: storage_where(
            client, "street-photos", lambda s: condition(s, "Degraded").get("reason") == "SecretMissing"
        )
    )
    assert "Secret 'street-photos-s3' not found" in condition(obj, "Degraded")["message"]
    assert await client.get(JOBS, NS, "street-photos-sync-1") is None

    # Once the Secret exists, the periodic resync picks it up and the sync starts.
    await apply(client, [d for d in example("03-s3-storage.yaml") if d["kind"] == "Secret"])
    await eventually(lambda: client.get(JOBS, NS, "street-photos-sync-1"))


async def test_schedule_makes_a_cronjob(kube, client, operator, example):
    docs = example("02-postgres-project.yaml") + example("03-s3-storage.yaml")
    docs[-1]["spec"]["schedule"] = "*/30 * * * *"
    await apply(client, docs)
    cron = await eventually(lambda: client.get(CRONJOBS, NS, "street-photos-sync"))
    assert cron["spec"]["schedule"] == "*/30 * * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert await client.get(JOBS, NS, "street-photos-sync-1") is None
    storage = await eventually(
        lambda: storage_where(client, "street-photos", lambda s: condition(s, "Ready").get("status") == "True")
    )
    assert storage["status"]["syncState"] == "initialized"
