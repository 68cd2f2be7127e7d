"""LabelingProject: a labeling project and the API server that serves it."""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from kubelabel_operator.models.common import (
    DNS_LABEL,
    OBJECT_DEFAULT,
    QUANTITY,
    BaseStatus,
    Condition,
    ConfigMapKeyRef,
    Model,
    ObjectRef,
    ResourceRequirements,
    SecretKeyRef,
    immutable,
)
from kubelabel_operator.models.pod import NetworkPolicySpec, PodSettings
from kubelabel_operator.models.storage_connection import CRON_MESSAGE, CRON_RE

Sampling = Literal["sequential", "uniform", "uncertainty"]
DeletionPolicy = Literal["Retain", "Delete"]
RESTORE_NEEDS_BACKUP = "spec.restoreFrom reads the bucket through spec.backup.storage: set spec.backup"
STORAGE_CONNECTION_ONLY = (
    "with backup.storage.storageConnection, the endpoint, region and credentials are the StorageConnection's:"
    " leave them out"
)
SAMPLING_LABELS: dict[str, str] = {
    "sequential": "Sequential sampling",
    "uniform": "Uniform sampling",
    "uncertainty": "Uncertainty sampling",
}


def _rule(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    out: JsonDict = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    return out


class LabelConfig(Model):
    """The Label Studio labeling configuration (XML): inline or from a ConfigMap key, exactly one."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _rule(
                    "has(self.inline) != has(self.configMapKeyRef)",
                    "set exactly one of labelConfig.inline or labelConfig.configMapKeyRef",
                )
            ]
        }
    )

    inline: str | None = Field(default=None, min_length=1, description="The XML labeling config itself.")
    config_map_key_ref: ConfigMapKeyRef | None = Field(
        default=None, description="A ConfigMap key (same namespace) holding the XML labeling config."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.inline is None) == (self.config_map_key_ref is None):
            raise ValueError("set exactly one of labelConfig.inline or labelConfig.configMapKeyRef")
        return self


class AnnotationSettings(Model):
    """How tasks are handed out and how many annotations each needs."""

    overlap: int = Field(default=1, ge=1, le=100, description="Annotations wanted per task.")
    sampling: Sampling = Field(default="sequential", description="Order in which annotators get tasks.")
    skip_allowed: bool = Field(default=True, description="Whether annotators may skip a task.")
    review_required: bool = Field(default=False, description="Whether annotations need a reviewer's verdict.")


class IngressSpec(Model):
    """An Ingress in front of the API server."""

    host: str = Field(min_length=1, max_length=253, description="Host name the Ingress answers for.")
    class_name: str | None = Field(default=None, description="IngressClass to use (cluster default if unset).")
    path: str = Field(default="/", pattern=r"^/", description="Path prefix routed to the API server.")
    tls_secret_name: str | None = Field(default=None, description="Secret with the TLS certificate for host.")
    annotations: dict[str, str] | None = Field(default=None, description="Extra Ingress annotations.")


class ServerSpec(Model):
    """The API server Deployment the project runs."""

    replicas: int = Field(default=1, ge=0, le=50, description="API server replicas (more than one needs postgres).")
    image: str | None = Field(default=None, description="Image override (default: the operator's kubelabel image).")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="Pull policy of the API server container."
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="Container resources (default: requests cpu 100m, memory 256Mi)."
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="Type of the API Service."
    )
    ingress: IngressSpec | None = Field(default=None, description="Expose the API through an Ingress.")


class PostgresSpec(Model):
    """PostgreSQL through a DSN kept in a Secret."""

    secret_ref: SecretKeyRef = Field(description="Secret key holding the DSN (postgresql://user:pass@host/db).")


class DatabaseSpec(Model):
    """Where the project's data lives."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _rule(
                    "self.type != 'postgres' || has(self.postgres)",
                    "database.type postgres needs database.postgres.secretRef",
                )
            ]
        }
    )

    type: Literal["sqlite", "postgres"] = Field(
        default="sqlite", description="sqlite (embedded, on a PVC, one replica) or postgres (Secret DSN)."
    )
    storage_size: str = Field(default="1Gi", pattern=QUANTITY, description="PVC size for SQLite.")
    storage_class_name: str | None = Field(default=None, description="StorageClass of the SQLite PVC.")
    postgres: PostgresSpec | None = Field(default=None, description="PostgreSQL connection (type postgres).")

    @model_validator(mode="after")
    def _postgres_has_secret(self) -> Self:
        if self.type == "postgres" and self.postgres is None:
            raise ValueError("database.type postgres needs database.postgres.secretRef")
        return self


class RedisSpec(Model):
    """Optional Redis for the job queue, locks and caches."""

    secret_ref: SecretKeyRef = Field(description="Secret key holding the Redis URL (redis://host:6379/0).")


class WebhookSpec(Model):
    """A webhook the API server calls on project events."""

    url: str = Field(pattern=r"^https?://", description="Where events are POSTed.")
    events: list[str] = Field(default_factory=list, description="Label Studio actions to send (empty: all).")
    secret_ref: SecretKeyRef | None = Field(default=None, description="Secret key with the HMAC signing key.")


BACKUP_URI = r"^(s3|gs|azure-blob)://[^/\s]+$"
RESTORE_URI = r"^(s3|gs|azure-blob)://[^/\s]+/\S+$"


class BackupStorage(Model):
    """The bucket backups go to: a StorageConnection's (provider, bucket, endpoint, region, credentials),
    or a bucket given here. Exactly one of storageConnection or bucket."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _rule(
                    "has(self.storageConnection) != has(self.bucket)",
                    "set exactly one of backup.storage.storageConnection or backup.storage.bucket",
                ),
                _rule(
                    "!has(self.storageConnection)"
                    " || !(has(self.endpoint) || has(self.region) || has(self.credentialsSecretRef))",
                    STORAGE_CONNECTION_ONLY,
                ),
            ]
        }
    )

    storage_connection: str | None = Field(
        default=None,
        max_length=253,
        description="Name of a StorageConnection in the namespace whose provider, bucket, endpoint, region and"
        " credentials the backups use (not its prefix).",
    )
    bucket: str | None = Field(
        default=None,
        pattern=BACKUP_URI,
        max_length=1100,
        description="s3://bucket, gs://bucket or azure-blob://container.",
    )
    endpoint: str | None = Field(
        default=None, pattern=r"^https?://", description="Custom endpoint URL (S3-compatible stores, emulators)."
    )
    region: str | None = Field(default=None, description="Region (S3).")
    credentials_secret_ref: ObjectRef | None = Field(
        default=None,
        description="Secret with the credentials, keys as a StorageConnection's (AWS_ACCESS_KEY_ID, ...);"
        " unset for workload identity.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.storage_connection is None) == (self.bucket is None):
            raise ValueError("set exactly one of backup.storage.storageConnection or backup.storage.bucket")
        if self.storage_connection is not None and (self.endpoint or self.region or self.credentials_secret_ref):
            raise ValueError(STORAGE_CONNECTION_ONLY)
        return self


class BackupSpec(Model):
    """Scheduled backups: a CronJob running `kubelabel backup --to <bucket>/<prefix> --keep <keep>`."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [_rule("self.schedule.matches('" + CRON_RE + "')", CRON_MESSAGE, ".schedule")]
        }
    )

    schedule: str = Field(max_length=100, description="Cron schedule of the backups (e.g. `0 3 * * *`, @daily).")
    storage: BackupStorage = Field(description="Where the backups go.")
    prefix: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^[^/]",
        description="Folder of this project's backups in the bucket (default kubelabel-backups/<namespace>/<name>);"
        " one project per prefix, since keep prunes every backup under it.",
    )
    keep: int = Field(default=7, ge=1, le=1000, description="Backups kept; older ones are deleted after each backup.")

    @model_validator(mode="after")
    def _cron(self) -> Self:
        if not re.match(CRON_RE, self.schedule):
            raise ValueError(CRON_MESSAGE)
        return self


class LabelingProjectSpec(Model):
    """Desired state of a LabelingProject."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _rule(
                    "self.server.replicas <= 1 || self.database.type == 'postgres'",
                    "more than one API server replica needs PostgreSQL (set spec.database.type: postgres)",
                    ".server.replicas",
                ),
                # The data stays where it was written (the SQLite PVC, or the PostgreSQL database):
                # a new type would start an empty project beside it.
                immutable("database.type", "the project's data would stay behind; create a new project instead"),
                _rule(
                    "has(self.adoptFrom) == has(oldSelf.adoptFrom)"
                    " && (!has(self.adoptFrom) || self.adoptFrom == oldSelf.adoptFrom)",
                    "spec.adoptFrom is immutable: the project would switch to another volume's data",
                    ".adoptFrom",
                ),
                _rule(
                    "has(self.restoreFrom) == has(oldSelf.restoreFrom)"
                    " && (!has(self.restoreFrom) || self.restoreFrom == oldSelf.restoreFrom)",
                    "spec.restoreFrom is immutable: a backup is restored only into a new project",
                    ".restoreFrom",
                ),
                _rule("!has(self.restoreFrom) || has(self.backup)", RESTORE_NEEDS_BACKUP, ".restoreFrom"),
            ]
        }
    )

    title: str = Field(min_length=1, max_length=200, description="Project title shown to annotators.")
    description: str = Field(default="", max_length=10000, description="Project description.")
    instructions: str = Field(default="", max_length=100000, description="Instructions for annotators (HTML).")
    label_config: LabelConfig = Field(description="The Label Studio labeling configuration.")
    annotation: AnnotationSettings = Field(
        default_factory=AnnotationSettings, json_schema_extra=OBJECT_DEFAULT, description="Annotation rules."
    )
    server: ServerSpec = Field(
        default_factory=ServerSpec, json_schema_extra=OBJECT_DEFAULT, description="The API server Deployment."
    )
    database: DatabaseSpec = Field(
        default_factory=DatabaseSpec, json_schema_extra=OBJECT_DEFAULT, description="The project's database."
    )
    redis: RedisSpec | None = Field(default=None, description="Optional Redis.")
    webhooks: list[WebhookSpec] = Field(default_factory=list, max_length=20, description="Outgoing webhooks.")
    deletion_policy: DeletionPolicy = Field(
        default="Retain",
        description="What deleting the project does to its SQLite PVC: Retain keeps it (never owned by the project,"
        " labelled kubelabel.io/retained-from) for a new project to adopt; Delete lets the garbage collector remove it."
        " A PostgreSQL database is never dropped.",
    )
    pod: PodSettings | None = Field(
        default=None, description="Placement and identity of the API server and worker pods (default: the operator's)."
    )
    network_policy: NetworkPolicySpec | None = Field(
        default=None, description="A NetworkPolicy admitting only the operator, the ingress and the project's own pods."
    )
    adopt_from: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL,
        description="Name of a deleted project whose retained SQLite PVC this project takes over"
        " (default: a PVC retained from a project of this name).",
    )
    backup: BackupSpec | None = Field(default=None, description="Scheduled backups of the project's database.")
    restore_from: str | None = Field(
        default=None,
        pattern=RESTORE_URI,
        max_length=2048,
        description="A backup (the URI `kubelabel backup` printed) restored into the new project's empty database"
        " before its API server first starts; read through spec.backup.storage. Immutable.",
    )

    @model_validator(mode="after")
    def _replicas_need_postgres(self) -> Self:
        if self.server.replicas > 1 and self.database.type != "postgres":
            raise ValueError("more than one API server replica needs PostgreSQL (set spec.database.type: postgres)")
        if self.restore_from is not None and self.backup is None:
            raise ValueError(RESTORE_NEEDS_BACKUP)
        return self


class ProjectCondition(Condition):
    """A project's condition: also BackedUp (its newest backup Job) and Restored (spec.restoreFrom)."""

    type: Literal["Ready", "Progressing", "Degraded", "BackedUp", "Restored"] = Field(  # type: ignore[assignment]  # pydantic re-declares it wider
        description="Ready (usable), Progressing (converging), Degraded (needs action), BackedUp (the newest"
        " backup Job succeeded), Restored (spec.restoreFrom was restored)."
    )


class LastBackup(Model):
    """A completed backup, as its Job's pod reported it."""

    time: str = Field(description="When the backup finished (RFC 3339).")
    size: int | None = Field(default=None, description="Bytes stored in the bucket.")
    location: str = Field(description="The backup's URI (what spec.restoreFrom or `kubelabel restore --from` takes).")


class LabelingProjectStatus(BaseStatus):
    """Observed state of a LabelingProject."""

    endpoint: str | None = Field(default=None, description="In-cluster URL of the API server.")
    admin_token_secret: str | None = Field(default=None, description="Secret holding the admin API token.")
    tasks: int | None = Field(default=None, description="Tasks in the project (polled from its API).")
    labeled_tasks: int | None = Field(default=None, description="Tasks with at least one annotation.")
    annotations: int | None = Field(default=None, description="Annotations in the project.")
    last_backup: LastBackup | None = Field(default=None, description="The newest completed backup.")
    conditions: list[ProjectCondition] = Field(  # type: ignore[assignment]  # list is invariant; pydantic re-declares it
        default_factory=list,
        description="Ready, Progressing and Degraded; BackedUp with spec.backup, Restored with spec.restoreFrom.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


__all__ = ["LabelingProjectSpec", "LabelingProjectStatus", "SAMPLING_LABELS"]
