"""Pods in the failing states a kubelet and a scheduler report, and the condition each must produce.

The shapes follow what the API server returns for real pods (kubectl get pod -o yaml) in each
state: a crash loop, an image that cannot be pulled, a failing `migrate` init container, a pod
no node fits. Shared by the unit tests of reconcilers.pods and the operator's emulated-API tests.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

DSN_PASSWORD = "s3cr3t-dsn-password"
IMAGE = "kubelabel:test"


def pod(
    name: str,
    template: dict[str, Any] | None = None,
    *,
    init: list[dict[str, Any]] | None = None,
    containers: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    created: str = "2026-12-06T03:00:00Z",
    phase: str = "Pending",
) -> dict[str, Any]:
    """A pod as its ReplicaSet makes it from `template` (labels, annotations, spec), with this status."""
    status: dict[str, Any] = {"phase": phase, "conditions": conditions or [], "containerStatuses": containers or []}
    if init is not None:
        status["initContainerStatuses"] = init
    if template is None:
        spec: dict[str, Any] = {"containers": [{"name": c["name"], "image": IMAGE} for c in containers or []]}
        if init:
            spec["initContainers"] = [{"name": c["name"], "image": IMAGE} for c in init]
        template = {"metadata": {}, "spec": spec}
    meta = template.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": dict(meta.get("labels") or {}),
            "annotations": dict(meta.get("annotations") or {}),
            "creationTimestamp": created,
        },
        "spec": copy.deepcopy(template["spec"]),
        "status": status,
    }


def waiting(name: str, reason: str, message: str = "", *, last: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "ready": False,
        "restartCount": 3 if last else 0,
        "image": IMAGE,
        "state": {"waiting": {"reason": reason, **({"message": message} if message else {})}},
        "lastState": {"terminated": last} if last else {},
    }
    return out


def running(name: str, ready: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "ready": ready,
        "restartCount": 0,
        "image": IMAGE,
        "state": {"running": {"startedAt": "2026-12-06T03:00:05Z"}},
        "lastState": {},
    }


def completed(name: str) -> dict[str, Any]:
    """An init container that ran to its end."""
    return {**running(name), "state": {"terminated": terminated(0, "Completed")}}


def terminated(code: int, reason: str = "Error", message: str = "") -> dict[str, Any]:
    return {
        "exitCode": code,
        "reason": reason,
        "startedAt": "2026-12-06T03:00:01Z",
        "finishedAt": "2026-12-06T03:00:02Z",
        **({"message": message} if message else {}),
    }


SCHEDULED = {"type": "PodScheduled", "status": "True"}
UNSCHEDULABLE = {
    "type": "PodScheduled",
    "status": "False",
    "reason": "Unschedulable",
    "message": "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
    "3 No preemption victims found for incoming pod.",
}
MIGRATE_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/api_server/cli.py", line 40, in migrate\n'
    "sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: "
    'connection to server at "10.0.0.7", port 5432 failed: FATAL:  password authentication failed for user "kl"\n'
    f"(Background on this error) url: postgresql://kl:{DSN_PASSWORD}@db:5432/kl\n"
)


def crash_loop(name: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    last = terminated(1, "Error", "RuntimeError: KUBELABEL_DATA_DIR /data is not writable\n")
    return pod(
        name,
        template,
        init=[completed("migrate")],
        containers=[waiting("api", "CrashLoopBackOff", "back-off 40s restarting failed container=api", last=last)],
        conditions=[SCHEDULED],
        phase="Running",
    )


def image_pull_backoff(name: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    message = 'Back-off pulling image "registry.example/kubelabel:nope"'
    return pod(
        name,
        template,
        init=[waiting("migrate", "ImagePullBackOff", message)],
        containers=[waiting("api", "PodInitializing")],
        conditions=[SCHEDULED],
    )


def err_image_pull(name: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    message = (
        'failed to pull and unpack image "registry.example/model:nope": '
        "failed to resolve reference: registry.example/model:nope: not found"
    )
    return pod(name, template, containers=[waiting("model", "ErrImagePull", message)], conditions=[SCHEDULED])


def migrate_failed(name: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    last = terminated(1, "Error", MIGRATE_TRACEBACK)
    return pod(
        name,
        template,
        init=[waiting("migrate", "CrashLoopBackOff", "back-off 20s restarting failed container=migrate", last=last)],
        containers=[waiting("api", "PodInitializing")],
        conditions=[SCHEDULED],
    )


def unschedulable(name: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    return pod(name, template, conditions=[UNSCHEDULABLE])


def healthy(name: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    return pod(
        name,
        template,
        init=[completed("migrate")],
        containers=[running("api")],
        conditions=[SCHEDULED],
        phase="Running",
    )


class PodState(NamedTuple):
    name: str
    make: Any  # (pod name, pod template or None) -> pod
    reason: str
    message_fragments: tuple[str, ...]


STATES: list[PodState] = [
    PodState(
        "crash loop",
        crash_loop,
        "CrashLoopBackOff",
        ("container api exited with code 1 (Error)", "KUBELABEL_DATA_DIR /data is not writable"),
    ),
    PodState(
        "image pull back-off",
        image_pull_backoff,
        "ImagePullBackOff",
        ('container migrate: ImagePullBackOff: Back-off pulling image "registry.example/kubelabel:nope"',),
    ),
    # The kubelet's other state of the same retries: the same reason, its own message.
    PodState(
        "image pull error",
        err_image_pull,
        "ImagePullBackOff",
        ("container model: ErrImagePull: failed to pull", "not found"),
    ),
    PodState(
        "migration failed",
        migrate_failed,
        "MigrationFailed",
        ("init container migrate exited with code 1 (Error)", "password authentication failed", "kl:***@db"),
    ),
    PodState("unschedulable", unschedulable, "Unschedulable", ("0/3 nodes are available: 3 Insufficient cpu",)),
]
