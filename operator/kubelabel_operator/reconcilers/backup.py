"""A LabelingProject's backups (spec.backup) and its restore (spec.restoreFrom).

Backups: a CronJob runs `kubelabel backup`; each Job's pod leaves its JSON result as its termination
message. The newest completed Job gives status.lastBackup {time, size, location}; the newest finished
one gives the BackedUp condition (False with the pod's message when it failed, and a Warning Event).
A backup that cannot be set up (its StorageConnection or Secret missing) is BackedUp False too: the
API server goes on serving, so the project itself is not Degraded by it.

Restore: before the API Deployment first exists, a Job `<project>-restore` runs `kubelabel restore`
into the empty database, and the reconcile waits for it. It runs once: after it succeeded (condition
Restored True), or once the Deployment exists, it is never started again; and `kubelabel restore`
refuses a database that is not empty, so even a Job started twice cannot overwrite work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kubelabel_operator.builders import backup as build
from kubelabel_operator.builders.meta import Owner, selector
from kubelabel_operator.builders.project import api_name
from kubelabel_operator.k8s import K8s
from kubelabel_operator.k8s.resources import CRONJOBS, DEPLOYMENTS, JOBS, PODS, STORAGES
from kubelabel_operator.models.labeling_project import LabelingProjectSpec
from kubelabel_operator.models.pod import PodSettings
from kubelabel_operator.models.storage_connection import StorageConnectionSpec
from kubelabel_operator.reconcilers import refs
from kubelabel_operator.reconcilers.apply import ensure, key, remove
from kubelabel_operator.reconcilers.conditions import Event, Verdict, is_subset
from kubelabel_operator.reconcilers.outcome import Blocked, Outcome
from kubelabel_operator.reconcilers.pods import redact
from kubelabel_operator.reconcilers.storage import termination_result

BACKED_UP = "BackedUp"
RESTORED = "Restored"
MESSAGE_LIMIT = 1000


class Restoring(Exception):
    """The restore Job has not finished: the API server must not start yet."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.message)
        self.verdict = verdict


@dataclass
class Condition:
    type: str
    status: str
    reason: str
    message: str = ""


@dataclass
class State:
    """What this reconciler adds to the project's status and Events (filled in as it goes)."""

    status: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, Condition | None] = field(default_factory=dict)  # None: remove it
    events: list[Event] = field(default_factory=list)


def _condition(body: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in (body.get("status") or {}).get("conditions") or [] if c.get("type") == ctype), None)


def _clip(text: str) -> str:
    text = redact(" ".join(text.split()))
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


async def resolve_bucket(k8s: K8s, owner: Owner, spec: LabelingProjectSpec) -> build.Bucket:
    """Where the backups go: spec.backup.storage's bucket (or its StorageConnection's) and prefix."""
    assert spec.backup is not None
    storage = spec.backup.storage
    prefix = (spec.backup.prefix or build.default_prefix(owner)).strip("/")
    if storage.storage_connection is None:
        assert storage.bucket is not None
        settings = {"endpoint": storage.endpoint, "region": storage.region}
        secret = storage.credentials_secret_ref.name if storage.credentials_secret_ref else None
        uri = f"{storage.bucket.rstrip('/')}/{prefix}"
    else:
        name = storage.storage_connection
        found = await k8s.get(STORAGES, owner.namespace, name)
        if found is None:
            raise Blocked(
                "StorageConnectionMissing",
                f"spec.backup.storage.storageConnection: StorageConnection {name!r} not found in {owner.namespace!r}",
            )
        try:
            connection = StorageConnectionSpec.model_validate(found.get("spec") or {})
        except ValidationError:
            raise Blocked("StorageConnectionInvalid", f"StorageConnection {name!r} has an invalid spec") from None
        if connection.direction == "import" and prefix.startswith(connection.prefix):
            # Its syncs would import the backup's parts as tasks.
            raise Blocked(
                "BackupPrefixOverlap",
                f"backups under {prefix!r} would be synced as tasks by import StorageConnection {name!r}"
                f" (prefix {connection.prefix!r}): set spec.backup.prefix outside it",
            )
        settings = {"endpoint": connection.endpoint, "region": connection.region}
        secret = connection.credentials_secret_ref.name if connection.credentials_secret_ref else None
        uri = f"{build.SCHEMES[connection.provider]}://{connection.bucket}/{prefix}"
    if secret is not None:
        await refs.require_secret(k8s, owner.namespace, secret)
    return build.Bucket(uri, {k: v for k, v in settings.items() if v}, secret)


def _finished(job: dict[str, Any]) -> tuple[str, str] | None:
    """(succeeded|failed, when) of a finished Job; None while it runs."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            outcome = "succeeded" if cond["type"] == "Complete" else "failed"
            return outcome, status.get("completionTime") or cond.get("lastTransitionTime") or ""
    return None


async def _result(k8s: K8s, namespace: str, job: dict[str, Any]) -> dict[str, Any]:
    pods = await k8s.list(PODS, namespace, {"job-name": job["metadata"]["name"]})
    return termination_result(pods) or {}


def _failure(job: dict[str, Any], result: dict[str, Any]) -> str:
    conds = [c for c in (job.get("status") or {}).get("conditions") or [] if c.get("type") == "Failed"]
    why = result.get("message") or (conds[0].get("message") if conds else "") or "the Job failed"
    return _clip(str(why))


async def restore_first(
    k8s: K8s,
    owner: Owner,
    spec: LabelingProjectSpec,
    image: str,
    claim: str | None,
    body: dict[str, Any],
    state: State,
    children: dict[str, str],
    pod_defaults: PodSettings | None = None,
) -> None:
    """With spec.restoreFrom, returns once the restore is done; raises Restoring while it runs and
    Blocked when it failed."""
    if spec.restore_from is None:
        state.conditions[RESTORED] = None
        return
    previous = _condition(body, RESTORED)
    if previous is not None and previous.get("status") == "True":
        return
    actual = await k8s.get(JOBS, owner.namespace, build.restore_job_name(owner.name))
    if actual is None:
        if await k8s.get(DEPLOYMENTS, owner.namespace, api_name(owner.name)) is not None:
            return  # the API server ran on this database: never restore over it
        bucket = await resolve_bucket(k8s, owner, spec)
        job = build.restore_job(owner, spec, image, bucket, claim, pod_defaults)
        children[key(job)], actual = await ensure(k8s, job, create_only=True)
    elif not any(r.get("uid") == owner.uid for r in actual["metadata"].get("ownerReferences") or []):
        raise Blocked("NameConflict", f"Job {build.restore_job_name(owner.name)!r} exists and is not this project's")
    done = _finished(actual)
    if done is None:
        message = f"restoring {spec.restore_from} before the API server starts"
        state.conditions[RESTORED] = Condition(RESTORED, "False", "Restoring", message)
        raise Restoring(Verdict.progressing("Restoring", message))
    result = await _result(k8s, owner.namespace, actual)
    if done[0] == "failed":
        message = f"restore of {spec.restore_from} failed: {_failure(actual, result)}"
        state.conditions[RESTORED] = Condition(RESTORED, "False", "RestoreFailed", message)
        raise Blocked("RestoreFailed", message)
    rows = result.get("rows")
    message = f"restored {spec.restore_from}" + (f" ({rows} rows)" if rows is not None else "")
    state.conditions[RESTORED] = Condition(RESTORED, "True", "Restored", message)
    state.events.append(Event("Normal", "Restored", message))


async def keep_backups(
    k8s: K8s,
    owner: Owner,
    spec: LabelingProjectSpec,
    image: str,
    claim: str | None,
    body: dict[str, Any],
    state: State,
    children: dict[str, str],
    pod_defaults: PodSettings | None = None,
) -> None:
    """The backup CronJob as spec.backup wants it (removed without it), and what its Jobs reported."""
    if spec.backup is None:
        if await remove(k8s, CRONJOBS, owner.namespace, build.cronjob_name(owner.name), owner.uid):
            children[f"CronJob/{build.cronjob_name(owner.name)}"] = "deleted"
        state.conditions[BACKED_UP] = None
        return
    try:
        bucket = await resolve_bucket(k8s, owner, spec)
    except Blocked as exc:
        state.conditions[BACKED_UP] = Condition(BACKED_UP, "False", exc.reason, exc.message)
        return
    cron = build.backup_cronjob(owner, spec, image, bucket, claim, pod_defaults)
    children[key(cron)], _ = await ensure(k8s, cron)
    jobs = await k8s.list(JOBS, owner.namespace, selector(owner.name, build.BACKUP_COMPONENT))
    finished = sorted(
        ((done[1], job["metadata"]["name"], done[0], job) for job in jobs if (done := _finished(job))),
        key=lambda item: item[:2],
    )
    succeeded = [item for item in finished if item[2] == "succeeded"]
    last = None
    if succeeded:
        when, _, _, job = succeeded[-1]
        result = await _result(k8s, owner.namespace, job)
        if result.get("uri"):
            last = {"time": when, "size": result.get("bytes"), "location": result["uri"]}
            state.status["lastBackup"] = {k: v for k, v in last.items() if v is not None}
    if not finished:
        state.conditions[BACKED_UP] = Condition(
            BACKED_UP, "Unknown", "Scheduled", f"no backup has run yet; schedule {spec.backup.schedule!r}"
        )
        return
    _, _, outcome, job = finished[-1]
    if outcome == "failed":
        why = _failure(job, await _result(k8s, owner.namespace, job))
        message = f"backup Job {job['metadata']['name']} failed: {why}"
        state.conditions[BACKED_UP] = Condition(BACKED_UP, "False", "BackupFailed", message)
        return
    location = last["location"] if last else "the bucket"
    size = f" ({last['size']} bytes)" if last and last.get("size") is not None else ""
    state.conditions[BACKED_UP] = Condition(BACKED_UP, "True", "BackupCompleted", f"backed up to {location}{size}")
    previous = ((body.get("status") or {}).get("lastBackup") or {}).get("location")
    if last is not None and last["location"] != previous:
        state.events.append(Event("Normal", "BackupCompleted", f"backed up to {location}{size}"))


def apply(outcome: Outcome, state: State, body: dict[str, Any], now: str) -> Outcome:
    """Adds the backup and restore status, conditions and Events to a project's reconcile outcome."""
    previous = body.get("status") or {}
    generation = body.get("metadata", {}).get("generation")
    conditions = [c for c in outcome.status.get("conditions") or [] if c.get("type") not in state.conditions]
    for ctype, cond in state.conditions.items():
        if cond is None:
            continue
        before = _condition(body, ctype)
        flipped = before is None or before.get("status") != cond.status
        entry: dict[str, Any] = {
            "type": ctype,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message,
            "lastTransitionTime": now if flipped or before is None else before.get("lastTransitionTime", now),
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        conditions.append(entry)
        changed = flipped or before is None or before.get("reason") != cond.reason
        if changed and cond.status == "False" and cond.reason not in ("Restoring", "RestoreFailed"):
            # RestoreFailed is the project's Degraded reason: its Event is posted with that condition.
            state.events.append(Event("Warning", cond.reason, cond.message))
    outcome.status = {**outcome.status, **state.status, "conditions": conditions}
    outcome.events.extend(state.events)
    outcome.changed = not is_subset(outcome.status, previous)
    return outcome
