"""Why a Deployment's pods do not come up: the most telling failure among their statuses.

A crash loop, an image that cannot be pulled or a pod no node takes changes nothing in the
Deployment's own status until its progress deadline (then only "ProgressDeadlineExceeded"): the
cause is in the pods. `pod_failure` is pure (pod dicts in, one failure out); `deployment_failure`
lists the pods of a Deployment and asks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kubelabel_operator.builders.project import MIGRATE_CONTAINER
from kubelabel_operator.k8s import K8s
from kubelabel_operator.k8s.resources import PODS

IMAGE_REASONS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull")
# The kubelet alternates between these two at every pull attempt: one reason keeps the condition
# (and its Events) steady; the message says which it was.
PULL_RETRIES = ("ImagePullBackOff", "ErrImagePull")
CONFIG_REASONS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
# Most telling first: a failed migration explains the crash loop of its init container; an image
# or configuration error is definitive; a crash loop is the program's own; an unscheduled pod may
# still find a node (a cluster autoscaler, a freed node).
RANK = (
    "MigrationFailed",
    "InitContainerFailed",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    *CONFIG_REASONS,
    "CrashLoopBackOff",
    "Unschedulable",
)
# Every reason pod_failure can return: a condition with one of these is re-read from the pods.
POD_REASONS = frozenset(RANK)
MESSAGE_LIMIT = 1000
TAIL_LIMIT = 600

_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*):\S*@")
_KEY_VALUE_SECRET = re.compile(
    r"(?i)(password|passwd|pwd|secret|token|api[_-]?key)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)"
)


@dataclass(frozen=True)
class PodFailure:
    reason: str
    message: str


def redact(text: str) -> str:
    """Credentials a log line may carry (a DSN's password, `password=...`) never reach a status."""
    text = _URL_PASSWORD.sub(r"\1:***@", text)
    return _KEY_VALUE_SECRET.sub(r"\1\2***", text)


def _tail(text: str | None) -> str:
    """The end of a termination message (the end of a traceback is the telling part), on one line."""
    flat = " | ".join(line.strip() for line in (text or "").strip().splitlines() if line.strip())
    return flat if len(flat) <= TAIL_LIMIT else "..." + flat[-TAIL_LIMIT:]


def _exit(terminated: dict[str, Any]) -> str:
    code = terminated.get("exitCode")
    reason = terminated.get("reason")
    out = f"exited with code {code}" + (f" ({reason})" if reason else "")
    tail = _tail(terminated.get("message"))
    return f"{out}: {tail}" if tail else out


def _failed_exit(status: dict[str, Any]) -> dict[str, Any] | None:
    """The container's failed termination: current, or the last one before a restart."""
    for state in (status.get("state") or {}, status.get("lastState") or {}):
        terminated: dict[str, Any] | None = state.get("terminated")
        if terminated and terminated.get("exitCode") not in (None, 0):
            return terminated
    return None


def _container_failure(status: dict[str, Any], init: bool) -> PodFailure | None:
    name = status.get("name", "?")
    waiting = (status.get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason") or ""
    if reason in PULL_RETRIES:
        return PodFailure("ImagePullBackOff", f"container {name}: {reason}: {waiting.get('message') or reason}")
    if reason in IMAGE_REASONS or reason in CONFIG_REASONS:
        return PodFailure(reason, f"container {name}: {waiting.get('message') or reason}")
    failed = _failed_exit(status)
    if init and failed is not None:
        # An init container that exited non-zero is retried with back-off (waiting CrashLoopBackOff);
        # the project's `migrate` init container is the one that applies the database schema.
        why = "MigrationFailed" if name == MIGRATE_CONTAINER else "InitContainerFailed"
        return PodFailure(why, f"init container {name} {_exit(failed)}")
    if reason == "CrashLoopBackOff" or (failed is not None and not status.get("ready")):
        # Between two back-offs the container runs for a while: still the same crash loop, so the
        # reason does not flap with each restart.
        detail = _exit(failed) if failed is not None else waiting.get("message") or "back-off restarting"
        return PodFailure("CrashLoopBackOff", f"container {name} {detail}")
    return None


def _one_pod(pod: dict[str, Any]) -> list[PodFailure]:
    status = pod.get("status") or {}
    name = pod.get("metadata", {}).get("name", "?")
    found = []
    for init, key in ((True, "initContainerStatuses"), (False, "containerStatuses")):
        for container in status.get(key) or []:
            failure = _container_failure(container, init)
            if failure is not None:
                found.append(PodFailure(failure.reason, f"pod {name}: {failure.message}"))
    for cond in status.get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            found.append(PodFailure("Unschedulable", f"pod {name}: {cond.get('message') or 'no node fits'}"))
    return found


def _of_template(pod: dict[str, Any], template: dict[str, Any]) -> bool:
    """Whether the pod was made from this pod template (its annotations and images), not an older one."""
    annotations = pod.get("metadata", {}).get("annotations") or {}
    wanted = (template.get("metadata") or {}).get("annotations") or {}
    if any(annotations.get(k) != v for k, v in wanted.items()):
        return False
    spec, pod_spec = template.get("spec") or {}, pod.get("spec") or {}
    for key in ("initContainers", "containers"):
        images = {c.get("name"): c.get("image") for c in pod_spec.get(key) or []}
        if any(images.get(c.get("name")) != c.get("image") for c in spec.get(key) or []):
            return False
    return True


def pod_failure(pods: list[dict[str, Any]], template: dict[str, Any] | None = None) -> PodFailure | None:
    """The most telling failure among the pods (None: nothing wrong is visible yet).

    Terminating pods are left out, and with `template` (the Deployment's) the pods of an older
    template: during a rollout that fixes a crash, the old pods still crash. Among equal reasons
    the newest pod wins. The message names the pod and container, is bounded and has credentials
    redacted.
    """
    live = [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")]
    if template is not None:
        live = [p for p in live if _of_template(p, template)]
    live.sort(key=lambda p: p.get("metadata", {}).get("creationTimestamp") or "", reverse=True)
    found = [failure for pod in live for failure in _one_pod(pod)]
    if not found:
        return None
    best = min(found, key=lambda f: RANK.index(f.reason))  # min keeps the first (newest) of a rank
    message = redact(best.message)
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 3] + "..."
    return PodFailure(best.reason, message)


async def deployment_failure(k8s: K8s, namespace: str, deployment: dict[str, Any]) -> PodFailure | None:
    """The failure of the pods of the Deployment's current template, found by its label selector."""
    spec = deployment.get("spec") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    if not selector:
        return None
    return pod_failure(await k8s.list(PODS, namespace, labels=selector), spec.get("template"))
