"""StorageConnection: check references, start sync Jobs (or keep a CronJob), follow them into status."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kubelabel_operator.builders import storage as build
from kubelabel_operator.builders.meta import STORAGE_LABEL, SYNC_REQUEST_ANNOTATION, Owner
from kubelabel_operator.k8s import K8s
from kubelabel_operator.k8s.resources import CRONJOBS, JOBS, PODS
from kubelabel_operator.models.pod import PodSettings
from kubelabel_operator.models.storage_connection import FINISHED_STATES, StorageConnectionSpec
from kubelabel_operator.reconcilers import refs
from kubelabel_operator.reconcilers.apply import ensure, key, remove
from kubelabel_operator.reconcilers.conditions import Verdict
from kubelabel_operator.reconcilers.outcome import Blocked, Outcome, finish


@dataclass(frozen=True)
class JobReport:
    state: str
    count: int | None = None
    errors: int | None = None
    message: str | None = None
    finished_at: str | None = None
    duration: float | None = None


def _parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def termination_result(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The JSON `kubelabel sync` left as its termination message (newest pod first)."""
    pods = sorted(pods, key=lambda p: p.get("metadata", {}).get("creationTimestamp") or "", reverse=True)
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            message = ((cs.get("state") or {}).get("terminated") or {}).get("message")
            if not message:
                continue
            for line in reversed(message.strip().splitlines()):
                try:
                    result = json.loads(line)
                except ValueError:
                    continue
                if isinstance(result, dict) and "status" in result:
                    return result
            return {"message": message.strip()[-500:]}
    return None


def job_report(job: dict[str, Any], pods: list[dict[str, Any]]) -> JobReport:
    """Where a sync Job is in initialized → queued → in_progress → completed | … | failed."""
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    failed = "Failed" in conditions
    done = "Complete" in conditions or (int(status.get("succeeded") or 0) > 0 and not status.get("active"))
    if not (failed or done):
        return JobReport("in_progress" if status.get("active") or status.get("ready") else "queued")
    result = termination_result(pods) or {}
    start = _parse_time(status.get("startTime"))
    end_raw = status.get("completionTime") or (conditions.get("Failed") or conditions.get("Complete") or {}).get(
        "lastTransitionTime"
    )
    end = _parse_time(end_raw)
    duration = (end - start).total_seconds() if start and end else None
    if failed:
        cond = conditions["Failed"]
        message = result.get("message") or cond.get("message") or cond.get("reason") or "the sync Job failed"
        return JobReport("failed", result.get("count"), result.get("errors"), message, end_raw, duration)
    state = str(result["status"]) if result.get("status") in FINISHED_STATES else "completed"
    message = result.get("message") or ("" if result else "the sync finished without reporting a result")
    return JobReport(state, result.get("count"), result.get("errors"), message, end_raw, duration)


def _verdict(report: JobReport | None) -> Verdict:
    if report is None:
        return Verdict.ready("Initialized", "no sync has run yet")
    if report.state == "failed":
        return Verdict.degraded("SyncFailed", report.message or "the sync failed")
    if report.state == "completed":
        return Verdict.ready("SyncCompleted", f"synced {report.count or 0} objects")
    if report.state == "completed_with_errors":
        return Verdict.ready(
            "SyncCompletedWithErrors", report.message or f"{report.errors or 0} objects failed to sync"
        )
    label = "SyncRunning" if report.state == "in_progress" else "SyncQueued"
    return Verdict.progressing(label, f"sync is {report.state.replace('_', ' ')}")


def _run_number(owner: Owner, job: dict[str, Any]) -> int:
    """n of an on-demand Job `<storage>-sync-<n>` (0 for CronJob-made Jobs)."""
    suffix = job["metadata"]["name"].removeprefix(f"{owner.name}-sync-")
    return int(suffix) if suffix.isdigit() else 0


async def _jobs(k8s: K8s, owner: Owner) -> list[dict[str, Any]]:
    jobs = await k8s.list(JOBS, owner.namespace, {STORAGE_LABEL: owner.name})
    return sorted(jobs, key=lambda j: (j["metadata"].get("creationTimestamp") or "", _run_number(owner, j)))


async def reconcile_storage(
    k8s: K8s,
    body: dict[str, Any],
    default_image: str,
    now: str,
    *,
    start_jobs: bool = True,
    pod_defaults: PodSettings | None = None,
) -> Outcome:
    owner = Owner.from_body(body)
    previous = body.get("status") or {}
    base: dict[str, Any] = {"syncState": previous.get("syncState") or "initialized"}
    try:
        spec = StorageConnectionSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        msg = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return finish(body, Verdict.degraded("InvalidSpec", msg), base, now)
    children: dict[str, str] = {}
    try:
        project = await refs.require_project(k8s, owner.namespace, spec.project_ref.name)
        image = refs.project_spec(project).server.image or default_image
        if spec.credentials_secret_ref is not None:
            await refs.require_secret(k8s, owner.namespace, spec.credentials_secret_ref.name)
        if spec.schedule:
            cron = build.sync_cronjob(owner, spec, image, pod_defaults)
            children[key(cron)], _ = await ensure(k8s, cron)
        elif await remove(k8s, CRONJOBS, owner.namespace, build.cronjob_name(owner.name), owner.uid):
            children[f"CronJob/{build.cronjob_name(owner.name)}"] = "deleted"
        jobs = await _jobs(k8s, owner)
        latest = jobs[-1] if jobs else None
        # The Jobs themselves are the record of which syncs ran: status may be stale after a crash.
        runs = max([int(previous.get("syncRuns") or 0)] + [_run_number(owner, j) for j in jobs])
        last_request = previous.get("lastSyncRequest")
        on_demand = [j for j in jobs if _run_number(owner, j)]
        if on_demand and _run_number(owner, on_demand[-1]) == runs:
            last_request = (on_demand[-1]["metadata"].get("annotations") or {}).get(SYNC_REQUEST_ANNOTATION)
        report = None
        if latest is not None:
            pods = await k8s.list(PODS, owner.namespace, {"job-name": latest["metadata"]["name"]})
            report = job_report(latest, pods)
        idle = report is None or report.state in FINISHED_STATES
        wants_run = runs == 0 or spec.sync_request != last_request
        if start_jobs and not spec.schedule and wants_run and idle:
            # Deterministic names make a restarted operator converge on a Job it already created.
            runs += 1
            job = build.sync_job(owner, spec, image, runs, pod_defaults)
            children[key(job)], latest = await ensure(k8s, job, create_only=True)
            report = JobReport("queued")
            last_request = spec.sync_request
        if runs:
            base["syncRuns"] = runs
            base["lastSyncRequest"] = last_request
        if latest is not None:
            base["lastJob"] = latest["metadata"]["name"]
        if report is not None:
            base["syncState"] = report.state
            if report.state in FINISHED_STATES:
                base.update(
                    {
                        "lastSyncTime": report.finished_at or now,
                        "lastSyncCount": report.count,
                        "lastSyncErrors": report.errors,
                        "lastSyncDurationSeconds": report.duration,
                        "message": report.message,
                    }
                )
        verdict = _verdict(report)
    except Blocked as exc:
        verdict = Verdict.degraded(exc.reason, exc.message)
    base = {k: v for k, v in base.items() if v is not None}
    return finish(body, verdict, base, now, children)
