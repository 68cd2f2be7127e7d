"""LabelingProject: a labeling project and the API server that serves it."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from kubelabel_operator.models.common import (
    DNS_LABEL,
    OBJECT_DEFAULT,
    QUANTITY,
    BaseStatus,
    ConfigMapKeyRef,
    Model,
    ResourceRequirements,
    SecretKeyRef,
    immutable,
)
from kubelabel_operator.models.pod import NetworkPolicySpec, PodSettings

Sampling = Literal["sequential", "uniform", "uncertainty"]
DeletionPolicy = Literal["Retain", "Delete"]
SAMPLING_LABELS: dict[str, str] = {
    "sequential": "Sequential sampling",
    "uniform": "Uniform sampling",
    "uncertainty": "Uncertainty sampling",
}


def _rule(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    out = {"rule": rule, "message": message}
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

    @model_validator(mode="after")
    def _replicas_need_postgres(self) -> Self:
        if self.server.replicas > 1 and self.database.type != "postgres":
            raise ValueError("more than one API server replica needs PostgreSQL (set spec.database.type: postgres)")
        return self


class LabelingProjectStatus(BaseStatus):
    """Observed state of a LabelingProject."""

    endpoint: str | None = Field(default=None, description="In-cluster URL of the API server.")
    admin_token_secret: str | None = Field(default=None, description="Secret holding the admin API token.")
    tasks: int | None = Field(default=None, description="Tasks in the project (polled from its API).")
    labeled_tasks: int | None = Field(default=None, description="Tasks with at least one annotation.")
    annotations: int | None = Field(default=None, description="Annotations in the project.")


__all__ = ["LabelingProjectSpec", "LabelingProjectStatus", "SAMPLING_LABELS"]
