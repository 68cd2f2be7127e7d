"""Children of a LabelingProject's spec.backup and spec.restoreFrom: the backup CronJob and the restore Job.

Both run the project's image with the database the API server uses (DATABASE_URL from its Secret, or
the SQLite PVC mounted at the same path) and reach the bucket as a sync Job does: endpoint and region
in KUBELABEL_STORAGE_SPEC, credentials as files of the mounted Secret. Each writes its one-line JSON
result to its termination message, which the operator reads into the project's status.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from kubelabel_operator.builders.meta import (
    Owner,
    container_security_context,
    job_pod_template,
    labels,
    metadata,
    selector,
)
from kubelabel_operator.builders.placement import place
from kubelabel_operator.builders.project import COMPONENT as API_COMPONENT
from kubelabel_operator.builders.project import DATA_DIR, database_env, pvc_name
from kubelabel_operator.builders.storage import CREDENTIALS_DIR, FINISHED_TTL_SECONDS, RESULT_FILE
from kubelabel_operator.models.labeling_project import LabelingProjectSpec
from kubelabel_operator.models.pod import PodSettings

BACKUP_COMPONENT = "backup"
RESTORE_COMPONENT = "restore"
SCHEMES = {"s3": "s3", "gcs": "gs", "azure": "azure-blob"}  # StorageConnection provider -> URI scheme
HISTORY = 3  # finished Jobs of each outcome the CronJob keeps (the operator reads the newest)
NODE = "kubernetes.io/hostname"


@dataclass(frozen=True)
class Bucket:
    """Where a project's backups go, resolved from spec.backup.storage (and its StorageConnection)."""

    uri: str  # <scheme>://<bucket>/<prefix>, no trailing slash
    storage_spec: dict[str, Any]  # KUBELABEL_STORAGE_SPEC: endpoint, region, ...
    credentials_secret: str | None


def cronjob_name(project: str) -> str:
    return f"{project}-backup"


def restore_job_name(project: str) -> str:
    return f"{project}-restore"


def default_prefix(owner: Owner) -> str:
    return f"kubelabel-backups/{owner.namespace}/{owner.name}"


def _pod_template(
    owner: Owner,
    spec: LabelingProjectSpec,
    image: str,
    bucket: Bucket,
    component: str,
    args: list[str],
    claim: str | None,
    pod_defaults: PodSettings | None,
) -> dict[str, Any]:
    env = database_env(spec) + [
        {"name": "KUBELABEL_STORAGE_SPEC", "value": json.dumps(bucket.storage_spec, sort_keys=True)},
        {"name": "KUBELABEL_STORAGE_CREDENTIALS_DIR", "value": CREDENTIALS_DIR},
        {"name": "KUBELABEL_RESULT_FILE", "value": RESULT_FILE},
    ]
    # /tmp holds the SQLite snapshot before it is uploaded: as much room as the database takes.
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    sqlite = spec.database.type == "sqlite"
    if sqlite:
        mounts.append({"name": "data", "mountPath": DATA_DIR})
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": claim or pvc_name(owner.name)}})
    if bucket.credentials_secret is not None:
        mounts.append({"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True})
        secret = {"secretName": bucket.credentials_secret, "defaultMode": 0o440}
        volumes.append({"name": "credentials", "secret": secret})
    container = {
        "name": component,
        "image": spec.server.image or image,
        "imagePullPolicy": spec.server.image_pull_policy,
        "command": ["kubelabel"],
        "args": args,
        "env": env,
        "terminationMessagePath": RESULT_FILE,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }
    template = place(job_pod_template(labels(owner.name, component), container, volumes), spec.pod, pod_defaults)
    if sqlite and component == BACKUP_COMPONENT and spec.server.replicas > 0:
        # The SQLite PVC is ReadWriteOnce: attached to the API pod's node, it can be mounted only there.
        # (The restore runs before any API pod exists: no such constraint.)
        # A copy: the affinity placement set may be the spec's own (or the operator default's) dict.
        affinity = template["spec"]["affinity"] = copy.deepcopy(template["spec"].get("affinity") or {})
        terms = affinity.setdefault("podAffinity", {}).setdefault("requiredDuringSchedulingIgnoredDuringExecution", [])
        terms.append({"labelSelector": {"matchLabels": selector(owner.name, API_COMPONENT)}, "topologyKey": NODE})
    return template


def backup_cronjob(
    owner: Owner,
    spec: LabelingProjectSpec,
    image: str,
    bucket: Bucket,
    claim: str | None = None,
    pod_defaults: PodSettings | None = None,
) -> dict[str, Any]:
    assert spec.backup is not None
    args = ["backup", "--to", bucket.uri, "--keep", str(spec.backup.keep)]
    job_labels = labels(owner.name, BACKUP_COMPONENT)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(cronjob_name(owner.name), owner, job_labels),
        "spec": {
            "schedule": spec.backup.schedule,
            # One backup at a time per prefix: pruning assumes no other run writes beside it.
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": HISTORY,
            "failedJobsHistoryLimit": HISTORY,
            "jobTemplate": {
                "metadata": {"labels": job_labels},
                "spec": {
                    # A retry is a new backup folder; the failed run's parts are pruned by a later --keep.
                    "backoffLimit": 1,
                    "template": _pod_template(owner, spec, image, bucket, BACKUP_COMPONENT, args, claim, pod_defaults),
                },
            },
        },
    }


def restore_job(
    owner: Owner,
    spec: LabelingProjectSpec,
    image: str,
    bucket: Bucket,
    claim: str | None = None,
    pod_defaults: PodSettings | None = None,
) -> dict[str, Any]:
    assert spec.restore_from is not None
    args = ["restore", "--from", spec.restore_from]
    job_labels = labels(owner.name, RESTORE_COMPONENT)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(restore_job_name(owner.name), owner, job_labels),
        "spec": {
            # A failed restore leaves the database empty (SQLite: the file is moved in only when
            # complete; PostgreSQL: one transaction), so a retry starts clean.
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": FINISHED_TTL_SECONDS,
            "template": _pod_template(owner, spec, image, bucket, RESTORE_COMPONENT, args, claim, pod_defaults),
        },
    }
