"""Reconcilers called directly against the emulated API: re-running changes nothing, a crash converges."""

from __future__ import annotations

from typing import Any

from kubelabel_operator.k8s.resources import BY_KIND, JOBS, PROJECTS, SECRETS, STORAGES
from kubelabel_operator.reconcilers.project import reconcile_project
from kubelabel_operator.reconcilers.storage import reconcile_storage
from operator_support import NS, namespaced


def versions(kube: Any) -> dict[tuple[str, str | None, str], str]:
    return {
        (str(res.plural), ns, name): obj.raw["metadata"]["resourceVersion"]
        for (res, ns, name), obj in kube.objects.items()
        if not obj.deleted
    }


async def test_second_reconcile_writes_nothing(kube, client, example):
    for doc in namespaced(example("02-postgres-project.yaml")):
        await client.create(BY_KIND[doc["kind"]], NS, doc)
    body = await client.get(PROJECTS, NS, "images")
    first = await reconcile_project(client, body, "kubelabel:test", "2026-11-27T10:00:00Z")
    assert set(first.children.values()) == {"created"}
    await client.patch_status(PROJECTS, NS, "images", first.status)
    token = (await client.get(SECRETS, NS, "images-admin-token"))["data"]["token"]

    before = versions(kube)
    body = await client.get(PROJECTS, NS, "images")
    second = await reconcile_project(client, body, "kubelabel:test", "2026-11-27T10:05:00Z")
    assert set(second.children.values()) == {"unchanged"}
    assert not second.changed and second.events == []
    assert versions(kube) == before  # not one object was written
    assert (await client.get(SECRETS, NS, "images-admin-token"))["data"]["token"] == token


async def test_drift_is_repaired(kube, client, example):
    for doc in namespaced(example("01-minimal-project.yaml")):
        await client.create(BY_KIND[doc["kind"]], NS, doc)
    body = await client.get(PROJECTS, NS, "sentiment")
    await reconcile_project(client, body, "kubelabel:test", "t0")
    await client.patch(BY_KIND["Deployment"], NS, "sentiment-api", {"spec": {"replicas": 5}})
    await client.delete(BY_KIND["Service"], NS, "sentiment-api")
    outcome = await reconcile_project(client, body, "kubelabel:test", "t1")
    assert outcome.children["Deployment/sentiment-api"] == "updated"
    assert outcome.children["Service/sentiment-api"] == "created"
    assert (await client.get(BY_KIND["Deployment"], NS, "sentiment-api"))["spec"]["replicas"] == 1


async def test_crash_between_job_creation_and_status_write_makes_no_duplicate(kube, client, example):
    for doc in namespaced(example("02-postgres-project.yaml") + example("03-s3-storage.yaml")):
        await client.create(BY_KIND[doc["kind"]], NS, doc)
    stale = await client.get(STORAGES, NS, "street-photos")
    first = await reconcile_storage(client, stale, "kubelabel:test", "t0")
    assert first.children["Job/street-photos-sync-1"] == "created"
    # The operator dies before writing status; after a restart it sees the same (stale) object.
    again = await reconcile_storage(client, stale, "kubelabel:test", "t1")
    assert again.children == {}  # the Job it finds is the one it made: nothing new
    assert again.status["syncRuns"] == 1 and again.status["lastJob"] == "street-photos-sync-1"
    assert [j["metadata"]["name"] for j in await client.list(JOBS, NS)] == ["street-photos-sync-1"]


async def test_name_conflict_with_a_foreign_object_is_reported(kube, client, example):
    await client.create(
        BY_KIND["ConfigMap"], NS, {"metadata": {"name": "sentiment-config", "namespace": NS}, "data": {"mine": "1"}}
    )
    for doc in namespaced(example("01-minimal-project.yaml")):
        await client.create(BY_KIND[doc["kind"]], NS, doc)
    body = await client.get(PROJECTS, NS, "sentiment")
    outcome = await reconcile_project(client, body, "kubelabel:test", "t0")
    assert outcome.verdict.state == "degraded" and outcome.verdict.reason == "NameConflict"
    assert "ConfigMap 'sentiment-config' already exists" in outcome.verdict.message
    assert (await client.get(BY_KIND["ConfigMap"], NS, "sentiment-config"))["data"] == {"mine": "1"}
