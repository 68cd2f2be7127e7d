"""Placement and identity of the pods the operator makes (`spec.pod` on every kind), and the
project's optional NetworkPolicy (`spec.networkPolicy`). The operator's settings hold defaults of
the same shapes; a field set on the resource replaces the default's field as a whole (lists and
maps are replaced, never merged)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from kubelabel_operator.models.common import Model, ObjectRef

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# The operator's own pod labels and annotations (selectors, config and secret hashes): never the user's.
RESERVED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/managed-by")
RESERVED_PREFIX = "kubelabel.io/"
MAX_PEERS = 10

LabelValue = Annotated[str, Field(max_length=63)]
AnnotationValue = Annotated[str, Field(max_length=8192)]


def _reserved_rule(field: str) -> JsonDict:
    keys = ", ".join(f"'{k}'" for k in RESERVED_LABELS)
    return {
        "rule": f"!has(self.{field}) || self.{field}.all(k, !(k in [{keys}]) && !k.startsWith('{RESERVED_PREFIX}'))",
        "message": f"pod.{field} must not set the operator's keys ({', '.join(RESERVED_LABELS)}, {RESERVED_PREFIX}*)",
        "fieldPath": f".{field}",
    }


def reserved_keys(keys: Any) -> list[str]:
    return sorted(k for k in keys if k in RESERVED_LABELS or k.startswith(RESERVED_PREFIX))


class Toleration(Model):
    """A toleration, as in a Pod spec."""

    key: str | None = Field(default=None, max_length=316, description="Taint key (empty with Exists: all).")
    operator: Literal["Exists", "Equal"] | None = Field(default=None, description="Exists or Equal (default).")
    value: str | None = Field(default=None, max_length=63, description="Taint value (Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect (empty: all)."
    )
    toleration_seconds: int | None = Field(default=None, description="How long a NoExecute taint is tolerated.")


class PodSettings(Model):
    """Where and as whom the pods run. Kubernetes types (affinity, topology spread constraints) are
    passed through as written and checked by the API server when the operator writes the pod template."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [_reserved_rule("labels"), _reserved_rule("annotations")]}
    )

    image_pull_secrets: list[ObjectRef] | None = Field(
        default=None, max_length=20, description="Secrets (same namespace) for pulling from a private registry."
    )
    node_selector: dict[str, LabelValue] | None = Field(
        default=None, max_length=32, description="Node labels the pods must match."
    )
    tolerations: list[Toleration] | None = Field(default=None, max_length=50, description="Tolerated node taints.")
    affinity: dict[str, Any] | None = Field(
        default=None, description="Node, pod and pod anti-affinity, as in a Pod spec."
    )
    topology_spread_constraints: list[dict[str, Any]] | None = Field(
        default=None, max_length=16, description="Topology spread constraints, as in a Pod spec."
    )
    service_account_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="ServiceAccount the pods run as (workload identity). Its token is still not mounted"
        " (automountServiceAccountToken: false); identity webhooks inject their own projected tokens.",
    )
    priority_class_name: str | None = Field(
        default=None, max_length=253, pattern=DNS_SUBDOMAIN, description="PriorityClass of the pods."
    )
    labels: dict[str, LabelValue] | None = Field(
        default=None, max_length=64, description="Extra pod labels (not the operator's own keys)."
    )
    annotations: dict[str, AnnotationValue] | None = Field(
        default=None, max_length=64, description="Extra pod annotations (not kubelabel.io/ keys)."
    )

    @model_validator(mode="after")
    def _not_ours(self) -> Self:
        for field in ("labels", "annotations"):
            taken = reserved_keys(getattr(self, field) or {})
            if taken:
                raise ValueError(f"pod.{field} must not set the operator's keys: {', '.join(taken)}")
        return self


class NetworkPolicySpec(Model):
    """A NetworkPolicy in front of the project's pods (unset fields: the operator's defaults)."""

    enabled: bool | None = Field(default=None, description="Create it (default: the operator's setting, off).")
    ingress_namespace_selector: dict[str, Any] | None = Field(
        default=None,
        description="Label selector of the ingress controller's namespace, admitted to the API port"
        " (default: the operator's setting, kubernetes.io/metadata.name: ingress-nginx).",
    )
    allow_from: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=MAX_PEERS,
        description="More NetworkPolicy peers admitted to the API port (e.g. Prometheus, external ML backends).",
    )


def effective(own: Any, default: Any) -> Any:
    """`own`'s fields where set, the default's elsewhere (each field replaced whole, never merged)."""
    if own is None:
        return default
    if default is None:
        return own
    return default.model_copy(update={k: v for k, v in own if v is not None})


__all__ = ["NetworkPolicySpec", "PodSettings", "Toleration", "effective"]
