"""Children of a StorageConnection: the sync Job (on demand) or CronJob (scheduled)."""

from __future__ import annotations

import json
from typing import Any

from kubelabel_operator.builders.meta import (
    STORAGE_LABEL,
    SYNC_REQUEST_ANNOTATION,
    Owner,
    container_security_context,
    job_pod_template,
    labels,
    metadata,
    resources,
)
from kubelabel_operator.builders.placement import place
from kubelabel_operator.builders.project import TOKEN_KEY, admin_secret_name, endpoint
from kubelabel_operator.models.pod import PodSettings
from kubelabel_operator.models.storage_connection import StorageConnectionSpec

COMPONENT = "storage-sync"
CREDENTIALS_DIR = "/var/run/secrets/kubelabel/storage"
RESULT_FILE = "/dev/termination-log"
FINISHED_TTL_SECONDS = 7 * 24 * 3600


def job_name(storage: str, run: int) -> str:
    return f"{storage}-sync-{run}"


def cronjob_name(storage: str) -> str:
    return f"{storage}-sync"


def _labels(owner: Owner, spec: StorageConnectionSpec) -> dict[str, str]:
    return labels(spec.project_ref.name, COMPONENT, **{STORAGE_LABEL: owner.name})


def pod_template(
    owner: Owner, spec: StorageConnectionSpec, image: str, pod_defaults: PodSettings | None = None
) -> dict[str, Any]:
    project = spec.project_ref.name
    env: list[dict[str, Any]] = [
        {"name": "KUBELABEL_API_URL", "value": endpoint(project, owner.namespace)},
        {
            "name": "KUBELABEL_API_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": admin_secret_name(project), "key": TOKEN_KEY}},
        },
        {"name": "KUBELABEL_PROJECT_ID", "value": "1"},
        {"name": "KUBELABEL_STORAGE_NAME", "value": f"{owner.namespace}/{owner.name}"},
        {"name": "KUBELABEL_STORAGE_SPEC", "value": json.dumps(spec.wire(), sort_keys=True)},
        {"name": "KUBELABEL_STORAGE_CREDENTIALS_DIR", "value": CREDENTIALS_DIR},
        {"name": "KUBELABEL_RESULT_FILE", "value": RESULT_FILE},
    ]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    if spec.credentials_secret_ref is not None:
        # Files, not env: the values never show up in `kubectl describe pod` or the process table.
        mounts.append({"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True})
        volumes.append(
            {"name": "credentials", "secret": {"secretName": spec.credentials_secret_ref.name, "defaultMode": 0o440}}
        )
    container = {
        "name": "sync",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["kubelabel"],
        "args": ["sync"],
        "env": env,
        "terminationMessagePath": RESULT_FILE,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": resources(spec.resources, {"cpu": "100m", "memory": "128Mi"}, {"memory": "512Mi"}),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }
    return place(job_pod_template(_labels(owner, spec), container, volumes), spec.pod, pod_defaults)


def _job_spec(
    owner: Owner, spec: StorageConnectionSpec, image: str, pod_defaults: PodSettings | None
) -> dict[str, Any]:
    return {
        "backoffLimit": spec.backoff_limit,
        "ttlSecondsAfterFinished": FINISHED_TTL_SECONDS,
        "template": pod_template(owner, spec, image, pod_defaults),
    }


def sync_job(
    owner: Owner, spec: StorageConnectionSpec, image: str, run: int, pod_defaults: PodSettings | None = None
) -> dict[str, Any]:
    annotations = {SYNC_REQUEST_ANNOTATION: spec.sync_request} if spec.sync_request else None
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(job_name(owner.name, run), owner, _labels(owner, spec), annotations),
        "spec": _job_spec(owner, spec, image, pod_defaults),
    }


def sync_cronjob(
    owner: Owner, spec: StorageConnectionSpec, image: str, pod_defaults: PodSettings | None = None
) -> dict[str, Any]:
    assert spec.schedule is not None
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(cronjob_name(owner.name), owner, _labels(owner, spec)),
        "spec": {
            "schedule": spec.schedule,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": _labels(owner, spec)},
                "spec": _job_spec(owner, spec, image, pod_defaults),
            },
        },
    }
