"""Failing pods reach the conditions with their cause (emulated API, the real operator running).

The emulated API has no kubelet: the tests create the pods of a Deployment with the statuses a
kubelet and the scheduler would report (tests/support/pod_states.py).
"""

from __future__ import annotations

from typing import Any

from kubelabel_operator.k8s import K8s
from kubelabel_operator.k8s.resources import BY_KIND, DEPLOYMENTS, EVENTS, MLBACKENDS, PODS, PROJECTS, Resource
from kubelabel_operator.reconcilers.project import check_rollout, reconcile_project
from operator_support import NS, condition, eventually, namespaced

from tests.support.pod_states import DSN_PASSWORD, STATES, crash_loop, healthy

PROJECT_STATES = [s for s in STATES if s.name != "image pull error"]


async def _when(client: K8s, res: Resource, name: str, predicate: Any) -> dict[str, Any] | None:
    obj = await client.get(res, NS, name)
    return obj if obj and obj.get("status") and predicate(obj) else None


def _reason_is(reason: str) -> Any:
    return lambda obj: condition(obj, "Ready").get("reason") == reason


async def _warnings(client: K8s, name: str) -> set[str]:
    events = await client.list(EVENTS, NS)
    return {e["reason"] for e in events if e["involvedObject"]["name"] == name and e["type"] == "Warning"}


async def test_project_conditions_name_the_pods_failure(kube, client, operator, example):
    for doc in namespaced(example("01-minimal-project.yaml")):
        await client.create(BY_KIND[doc["kind"]], NS, doc)
    dep = await eventually(lambda: client.get(DEPLOYMENTS, NS, "sentiment-api"))
    template = dep["spec"]["template"]

    # The Deployment alone only knows its deadline passed.
    deadline = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "sentiment-api-5d9c" has timed out progressing.',
    }
    await client.patch_status(
        DEPLOYMENTS, NS, "sentiment-api", {"observedGeneration": 1, "replicas": 1, "conditions": [deadline]}
    )
    await eventually(lambda: _when(client, PROJECTS, "sentiment", _reason_is("RolloutStuck")))

    # Each failure in turn, the pod before it gone: the conditions follow the pods.
    previous = None
    for i, state in enumerate(PROJECT_STATES):
        if previous is not None:
            await client.delete(PODS, NS, previous)
        previous = f"sentiment-api-5d9c-{i}"
        await client.create(PODS, NS, state.make(previous, template))
        project = await eventually(lambda: _when(client, PROJECTS, "sentiment", _reason_is(state.reason)))  # noqa: B023
        ready, degraded = condition(project, "Ready"), condition(project, "Degraded")
        assert ready["status"] == "False" and degraded["status"] == "True"
        assert degraded["reason"] == state.reason and degraded["message"] == ready["message"]
        assert ready["message"].startswith(f"pod {previous}: ")
        for fragment in state.message_fragments:
            assert fragment in ready["message"], (state.name, ready["message"])
        assert DSN_PASSWORD not in ready["message"]

    # A Warning Event for each new cause.
    wanted = {s.reason for s in PROJECT_STATES} | {"RolloutStuck"}
    await eventually(lambda: _subset(wanted, _warnings(client, "sentiment")))

    # Fixed: a healthy pod and a Deployment that reports it; the pod failure does not linger.
    await client.delete(PODS, NS, previous)
    await client.create(PODS, NS, healthy("sentiment-api-7f00-0", template))
    await client.patch_status(
        DEPLOYMENTS,
        NS,
        "sentiment-api",
        {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}],
        },
    )
    project = await eventually(lambda: _when(client, PROJECTS, "sentiment", _reason_is("Available")))
    assert condition(project, "Degraded")["status"] == "False"


async def _subset(wanted: set[str], got: Any) -> bool:
    return wanted <= await got


async def test_managed_backend_conditions_name_the_image_pull_failure(kube, client, operator, example):
    for doc in namespaced(example("01-minimal-project.yaml")):
        await client.create(BY_KIND[doc["kind"]], NS, doc)
    backend = namespaced(example("04-ml-backend.yaml"))[0]
    backend["spec"]["timeoutSeconds"] = 1
    backend["spec"]["healthCheckIntervalSeconds"] = 5
    await client.create(MLBACKENDS, NS, backend)
    dep = await eventually(lambda: client.get(DEPLOYMENTS, NS, "sentiment-model-model"))
    mlb = await eventually(lambda: _when(client, MLBACKENDS, "sentiment-model", _reason_is("BackendUnreachable")))

    (state,) = [s for s in STATES if s.name == "image pull error"]
    await client.create(PODS, NS, state.make("sentiment-model-model-6c4f-0", dep["spec"]["template"]))
    # Re-checked at the next health check (or at once on a spec change).
    await client.patch(MLBACKENDS, NS, "sentiment-model", {"spec": {"timeoutSeconds": 2}})
    mlb = await eventually(lambda: _when(client, MLBACKENDS, "sentiment-model", _reason_is("ImagePullBackOff")))
    message = condition(mlb, "Degraded")["message"]
    assert condition(mlb, "Degraded")["reason"] == "ImagePullBackOff"
    assert message.startswith("pod sentiment-model-model-6c4f-0: container model: ErrImagePull: failed to pull")
    assert mlb["status"]["ready"] is False and "not found" in mlb["status"]["message"]
    await eventually(lambda: _subset({"ImagePullBackOff"}, _warnings(client, "sentiment-model")))


async def test_the_periodic_look_reads_pods_of_projects_not_ready(kube, client, example):
    """What the operator does every 15 s between resyncs: nothing changed in the Deployment, yet the
    crash loop shows; a Ready project is not looked at."""
    for doc in namespaced(example("01-minimal-project.yaml")):
        await client.create(BY_KIND[doc["kind"]], NS, doc)
    body = await client.get(PROJECTS, NS, "sentiment")
    first = await reconcile_project(client, body, "kubelabel:test", "2026-12-06T03:00:00Z")
    assert first.verdict.reason == "Starting"
    await client.patch_status(PROJECTS, NS, "sentiment", first.status)
    dep = await client.get(DEPLOYMENTS, NS, "sentiment-api")
    await client.create(PODS, NS, crash_loop("sentiment-api-1", dep["spec"]["template"]))

    body = await client.get(PROJECTS, NS, "sentiment")
    outcome = await check_rollout(client, body, "2026-12-06T03:00:15Z")
    assert outcome is not None and outcome.verdict.reason == "CrashLoopBackOff" and outcome.changed
    assert [(e.type, e.reason) for e in outcome.events] == [("Warning", "CrashLoopBackOff")]

    ready = {**body, "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Available"}]}}
    assert await check_rollout(client, ready, "2026-12-06T03:00:30Z") is None
