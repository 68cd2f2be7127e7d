"""LabelingProject against the emulated API with the real operator running."""

from __future__ import annotations

import copy
from typing import Any

from kubelabel_operator.k8s import K8s
from kubelabel_operator.k8s.resources import (
    BY_KIND,
    CONFIGMAPS,
    DEPLOYMENTS,
    PDBS,
    PROJECTS,
    PVCS,
    SECRETS,
    SERVICES,
)
from operator_support import NS, eventually, namespaced


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == ctype:
            return cond  # type: ignore[no-any-return]
    return {}


async def simulate_rollout(client: K8s, name: str) -> None:
    """What the Deployment controller would report once every pod of the current template is ready."""
    dep = await client.get(DEPLOYMENTS, NS, name)
    assert dep is not None
    replicas = dep["spec"]["replicas"]
    await client.patch_status(
        DEPLOYMENTS,
        NS,
        name,
        {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        },
    )


async def test_project_children_status_rollout_and_deletion(kube, client, operator, example):
    body = example("01-minimal-project.yaml")[0]
    body["metadata"]["namespace"] = NS
    created = await client.create(PROJECTS, NS, copy.deepcopy(body))
    uid = created["metadata"]["uid"]

    dep = await eventually(lambda: client.get(DEPLOYMENTS, NS, "sentiment-api"))
    children = {
        "cm": await client.get(CONFIGMAPS, NS, "sentiment-config"),
        "secret": await client.get(SECRETS, NS, "sentiment-admin-token"),
        # Applied right after the Deployment by the same reconcile: it may still be on its way.
        "svc": await eventually(lambda: client.get(SERVICES, NS, "sentiment-api")),
        "dep": dep,
    }
    # deletionPolicy Retain (the default): the data volume is never owned by the project.
    pvc = await client.get(PVCS, NS, "sentiment-data")
    assert not pvc["metadata"].get("ownerReferences")
    assert pvc["metadata"]["labels"]["kubelabel.io/retained-from"] == "sentiment"
    assert pvc["metadata"]["annotations"]["kubelabel.io/retained-from-uid"] == uid
    for child in children.values():
        assert child is not None
        (ref,) = child["metadata"]["ownerReferences"]
        assert ref["uid"] == uid and ref["kind"] == "LabelingProject" and ref["controller"] is True
        labels = child["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "kubelabel-operator"
        assert labels["kubelabel.io/project"] == "sentiment"
        assert "app.kubernetes.io/instance" not in labels
    token = children["secret"]["data"]["token"]

    # No controller has reported pods yet: progressing, not ready.
    project = await eventually(lambda: client.get(PROJECTS, NS, "sentiment"))
    project = await eventually(lambda: _with(client, lambda p: condition(p, "Progressing").get("status") == "True"))
    assert condition(project, "Ready")["status"] == "False"
    assert project["status"]["endpoint"] == "http://sentiment-api.default.svc:8080"
    assert project["status"]["adminTokenSecret"] == "sentiment-admin-token"
    assert project["status"]["observedGeneration"] == 1
    # Nothing outside Kubernetes to clean up: no finalizer, so deletion never waits for the operator.
    assert not project["metadata"].get("finalizers")

    await simulate_rollout(client, "sentiment-api")
    project = await eventually(lambda: _with(client, lambda p: condition(p, "Ready").get("status") == "True"))
    ready_since = condition(project, "Ready")["lastTransitionTime"]
    assert condition(project, "Ready")["reason"] == "Available"
    assert condition(project, "Degraded")["status"] == "False"

    # A spec change rolls the Deployment (new config hash) and is reported as progressing.
    old_hash = dep["spec"]["template"]["metadata"]["annotations"]["kubelabel.io/config-hash"]
    await client.patch(PROJECTS, NS, "sentiment", {"spec": {"title": "Sentiment, second round"}})

    async def rolled() -> dict[str, Any] | None:
        d = await client.get(DEPLOYMENTS, NS, "sentiment-api")
        annotations = d["spec"]["template"]["metadata"]["annotations"]
        return d if annotations["kubelabel.io/config-hash"] != old_hash else None

    await eventually(rolled)
    cm = await client.get(CONFIGMAPS, NS, "sentiment-config")
    assert '"title": "Sentiment, second round"' in cm["data"]["project.json"]
    project = await eventually(
        lambda: _with(
            client, lambda p: p["status"].get("observedGeneration") == 2 and condition(p, "Ready")["status"] == "False"
        )
    )
    await simulate_rollout(client, "sentiment-api")
    project = await eventually(lambda: _with(client, lambda p: condition(p, "Ready").get("status") == "True"))
    assert condition(project, "Ready")["lastTransitionTime"] >= ready_since
    # The admin token is never rotated by a reconcile.
    assert (await client.get(SECRETS, NS, "sentiment-admin-token"))["data"]["token"] == token

    # Transitions were posted as Events on the project.
    events = [e.raw for (res, ns, _), e in kube.objects.items() if res == "v1/events" and not e.deleted]
    reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == "sentiment"}
    assert {"Starting", "Available", "RollingOut"} <= reasons

    # Deleting the project removes its children (owner references + garbage collection) but the
    # data volume, which stays with an Event saying so.
    assert await client.delete(PROJECTS, NS, "sentiment")
    await eventually(lambda: _gone(client))
    assert await client.get(PVCS, NS, "sentiment-data") is not None

    def retained_event() -> bool:
        events = [e.raw for (res, ns, _), e in kube.objects.items() if res == "v1/events" and not e.deleted]
        return any(e["reason"] == "Retained" and e["involvedObject"]["name"] == "sentiment-data" for e in events)

    await eventually(retained_event)


async def _with(client: K8s, predicate: Any) -> dict[str, Any] | None:
    project = await client.get(PROJECTS, NS, "sentiment")
    return project if project and project.get("status") and predicate(project) else None


async def _gone(client: K8s) -> bool:
    for res, name in [
        (DEPLOYMENTS, "sentiment-api"),
        (SERVICES, "sentiment-api"),
        (CONFIGMAPS, "sentiment-config"),
        (SECRETS, "sentiment-admin-token"),
    ]:
        if await client.get(res, NS, name) is not None:
            return False
    return True


async def test_a_bad_config_from_a_config_map_is_reported_and_never_rolled_out(kube, client, operator, example):
    """Admission cannot see a ConfigMap edited later: the reconcile checks the config it would roll out."""
    good = example("01-minimal-project.yaml")[0]["spec"]["labelConfig"]["inline"]
    await client.create(
        CONFIGMAPS, NS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"xml": good}}
    )
    body = example("01-minimal-project.yaml")[0]
    body["metadata"]["namespace"] = NS
    body["spec"]["labelConfig"] = {"configMapKeyRef": {"name": "cfg", "key": "xml"}}
    await client.create(PROJECTS, NS, body)
    dep = await eventually(lambda: client.get(DEPLOYMENTS, NS, "sentiment-api"))
    rolled_out = dep["spec"]["template"]["metadata"]["annotations"]["kubelabel.io/config-hash"]

    await client.patch(CONFIGMAPS, NS, "cfg", {"data": {"xml": good.replace("<Text ", "<Txet ")}})
    project = await eventually(lambda: _with_reason(client, "InvalidLabelConfig"), timeout=30)
    ready = condition(project, "Ready")
    assert ready["status"] == "False" and "unknown tag <Txet>" in ready["message"], ready
    dep = await client.get(DEPLOYMENTS, NS, "sentiment-api")
    assert dep["spec"]["template"]["metadata"]["annotations"]["kubelabel.io/config-hash"] == rolled_out
    config = await client.get(CONFIGMAPS, NS, "sentiment-config")
    assert "<Txet" not in str(config["data"]), "the bad config reached the API server's ConfigMap"


async def _with_reason(client: K8s, reason: str) -> dict[str, Any] | None:
    project = await client.get(PROJECTS, NS, "sentiment")
    return project if condition(project, "Ready").get("reason") == reason else None


async def test_a_disruption_budget_only_while_more_than_one_replica_serves(kube, client, operator, example):
    """Example 02 runs 2 API replicas: a node drain may evict only one at a time. At 1 replica the
    budget would only block drains, so it goes."""
    for doc in namespaced(example("02-postgres-project.yaml")):
        await client.create(BY_KIND[doc["kind"]], NS, doc)
    pdb = await eventually(lambda: client.get(PDBS, NS, "images-api"))
    dep = await client.get(DEPLOYMENTS, NS, "images-api")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == dep["spec"]["selector"]
    project = await client.get(PROJECTS, NS, "images")
    (ref,) = pdb["metadata"]["ownerReferences"]
    assert ref["uid"] == project["metadata"]["uid"] and ref["controller"] is True

    await client.patch(PROJECTS, NS, "images", {"spec": {"server": {"replicas": 1}}})

    async def removed() -> bool:
        return await client.get(PDBS, NS, "images-api") is None

    await eventually(removed)
    # The API server itself stays.
    assert await client.get(DEPLOYMENTS, NS, "images-api") is not None
