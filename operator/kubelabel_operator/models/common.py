"""Pieces shared by every kind: base config, references, resources, conditions and status."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"

# Objects with this schema default are filled in by the API server, so nested defaults (and CEL rules
# reading them, such as self.server.replicas) always see a value.
OBJECT_DEFAULT: dict[str, Any] = {"default": {}}


def immutable(path: str, why: str) -> JsonDict:
    """A CEL transition rule on a spec: `spec.<path>` keeps its value from creation on.

    Placed on the spec (always present in an update) rather than on the field, so an optional or
    defaulted field needs no optionalOldSelf; the API server runs it on updates only.
    """
    return {
        "rule": f"self.{path} == oldSelf.{path}",
        "message": f"spec.{path} is immutable: {why}",
        "fieldPath": f".{path}",
    }


ConditionType = Literal["Ready", "Progressing", "Degraded"]
ConditionStatus = Literal["True", "False", "Unknown"]


class Model(BaseModel):
    """Base of every spec/status model: camelCase on the wire, immutable in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        """The object as it appears in a manifest (camelCase, unset optionals left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ObjectRef(Model):
    """A reference to another object in the same namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the object in the same namespace.")


class SecretKeyRef(Model):
    """A key of a Secret in the same namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret in the same namespace.")
    key: str = Field(min_length=1, max_length=253, description="Key inside the Secret.")


class ConfigMapKeyRef(Model):
    """A key of a ConfigMap in the same namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the ConfigMap in the same namespace.")
    key: str = Field(min_length=1, max_length=253, description="Key inside the ConfigMap.")


class ResourceRequirements(Model):
    """Compute resources of a container, as in a Pod spec (quantities are strings such as `500m`, `1Gi`)."""

    requests: dict[str, str] | None = Field(default=None, description="Minimum resources, e.g. {cpu: 100m}.")
    limits: dict[str, str] | None = Field(default=None, description="Maximum resources, e.g. {memory: 1Gi}.")


class Condition(Model):
    """One observation of the object's state, shaped like metav1.Condition."""

    type: ConditionType = Field(description="Ready (usable), Progressing (converging), Degraded (needs action).")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(max_length=1024, description="CamelCase machine-readable reason.")
    message: str = Field(default="", max_length=32768, description="Human-readable detail.")
    last_transition_time: str = Field(description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(default=None, ge=0, description="Generation this was computed for.")


class BaseStatus(Model):
    """Status fields every kind has."""

    observed_generation: int | None = Field(default=None, description="metadata.generation last reconciled.")
    paused: bool | None = Field(
        default=None, description='True while the annotation kubelabel.io/paused: "true" stops all reconciling.'
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Progressing and Degraded.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
