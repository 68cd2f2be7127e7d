"""MLBackend: a model server (managed here, or external) registered with a project."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from kubelabel_operator.models.common import (
    OBJECT_DEFAULT,
    QUANTITY,
    BaseStatus,
    Model,
    ObjectRef,
    ResourceRequirements,
    immutable,
)
from kubelabel_operator.models.pod import PodSettings


class EnvVar(Model):
    """A plain environment variable (secrets belong in Secrets, not here)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Variable name.")
    value: str = Field(default="", description="Variable value.")


class ModelVolume(Model):
    """Where the model server keeps its model files."""

    size: str = Field(default="1Gi", pattern=QUANTITY, description="Size of the model PVC.")
    storage_class_name: str | None = Field(default=None, description="StorageClass of the model PVC.")
    existing_claim: str | None = Field(default=None, description="Use this PVC instead of creating one.")
    mount_path: str = Field(default="/models", pattern=r"^/", description="Mount path in the container.")


class ManagedBackend(Model):
    """A model server the operator runs (Deployment + Service)."""

    image: str | None = Field(
        default=None,
        description="Image (default: the kubelabel image running `kubelabel model-server`).",
    )
    command: list[str] | None = Field(default=None, description="Container command override.")
    args: list[str] | None = Field(default=None, description="Container args override.")
    port: int = Field(default=9090, ge=1, le=65535, description="Port the model server listens on.")
    replicas: int = Field(default=1, ge=0, le=20, description="Model server replicas.")
    resources: ResourceRequirements | None = Field(default=None, description="Container resources.")
    gpu: int = Field(default=0, ge=0, le=16, description="NVIDIA GPUs per replica (nvidia.com/gpu limit).")
    env: list[EnvVar] = Field(default_factory=list, description="Extra environment variables.")
    model_volume: ModelVolume | None = Field(default=None, description="Persistent volume for model files.")


class ExternalBackend(Model):
    """A model server running elsewhere."""

    url: str = Field(pattern=r"^https?://", description="Base URL of the ML backend.")


class ActiveLearning(Model):
    """How predictions order the annotation queue."""

    strategy: Literal["none", "uncertainty", "random"] = Field(
        default="none", description="uncertainty: lowest prediction score first (sampling: uncertainty)."
    )


class MLBackendSpec(Model):
    """Desired state of an MLBackend."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.managed) != has(self.external)",
                    "message": "set exactly one of spec.managed or spec.external",
                },
                # The registration lives in the project's database and is removed on deletion only.
                immutable("projectRef", "the old project would keep the registration; create a new MLBackend"),
            ]
        }
    )

    project_ref: ObjectRef = Field(description="The LabelingProject (same namespace) this backend serves.")
    managed: ManagedBackend | None = Field(default=None, description="Run the model server here.")
    external: ExternalBackend | None = Field(default=None, description="Use a model server running elsewhere.")
    auth_secret_ref: ObjectRef | None = Field(
        default=None, description="Secret with `username` and `password` for basic auth to the backend."
    )
    timeout_seconds: int = Field(default=10, ge=1, le=600, description="Timeout of calls to the backend.")
    auto_predict: bool = Field(default=True, description="Ask for predictions when tasks are imported.")
    active_learning: ActiveLearning = Field(
        default_factory=ActiveLearning, json_schema_extra=OBJECT_DEFAULT, description="Active learning."
    )
    health_check_interval_seconds: int = Field(
        default=30, ge=5, le=3600, description="How often the operator checks /health and /setup."
    )
    title: str | None = Field(default=None, max_length=200, description="Title in the project (default ns/name).")
    pod: PodSettings | None = Field(
        default=None, description="Placement and identity of a managed model server's pods (default: the operator's)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.managed is None) == (self.external is None):
            raise ValueError("set exactly one of spec.managed or spec.external")
        return self


class MLBackendStatus(BaseStatus):
    """Observed state of an MLBackend."""

    ready: bool | None = Field(default=None, description="Whether the last health check passed.")
    url: str | None = Field(default=None, description="URL the project calls.")
    model_version: str | None = Field(default=None, description="Model version reported by /setup.")
    last_health_check: str | None = Field(default=None, description="Time of the last health check.")
    backend_id: int | None = Field(default=None, description="Id of the backend in the project's API.")
    message: str | None = Field(default=None, description="Result of the last check or registration.")


__all__ = ["MLBackendSpec", "MLBackendStatus"]
