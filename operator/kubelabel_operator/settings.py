"""Operator settings from the environment (prefix KUBELABEL_OPERATOR_), read once at start."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubelabel_operator.models.pod import NetworkPolicySpec, PodSettings

DEFAULT_INGRESS_NAMESPACES = {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}


def _default_image() -> str:
    try:
        tag = version("kubelabel")
    except PackageNotFoundError:
        tag = "latest"
    return f"ghcr.io/kubelabel/kubelabel:{tag}"


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KUBELABEL_OPERATOR_", extra="ignore")

    image: str = Field(default_factory=_default_image, description="Image of API servers, sync Jobs, models.")
    kubeconfig: str | None = Field(default=None, description="Kubeconfig path (default: in-cluster, KUBECONFIG).")
    # Peering: one active operator among replicas. Off when the peering CRDs are not installed.
    standalone: bool = False
    peering_name: str = "kubelabel"
    # Set by `kubelabel operator --namespace ...`: Kopf serves exactly those namespaces and lists no
    # others (the namespaced RBAC grants no cluster-wide namespace list; Kopf would retry it at start).
    namespaced: bool = False
    priority: int = 0
    liveness_endpoint: str | None = "http://0.0.0.0:8080/healthz"
    log_format: Literal["json", "plain", "full"] = "json"
    verbose: bool = False
    metrics_enabled: bool = True
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9102
    post_events: bool = True
    # Where the operator reaches a project's API server ({service}, {namespace}, {project}).
    api_url_template: str = "http://{service}.{namespace}.svc:8080"
    http_timeout_seconds: float = 10.0
    # Level-based safety net: every resource is fully reconciled at least this often.
    resync_interval_seconds: float = 300.0
    stats_interval_seconds: float = 60.0
    ml_check_interval_seconds: float = 10.0
    finalizer: str = "kubelabel.io/finalizer"
    # The validating admission webhook for LabelingProject (docs/operator.md). Off unless asked: the
    # shipped manifests and chart turn it on; a local `kubelabel operator` and the emulator tests run without.
    webhook_enabled: bool = False
    webhook_host: str = Field(default="127.0.0.1", description="Address the webhook server listens on.")
    webhook_port: int = Field(default=9443, ge=1, le=65535)
    # How the API server reaches the webhook: `url` (https://<url host>:<port>/..., an operator outside the
    # cluster or next to a local kube-apiserver) or `service` (a Service in front of the operator's pods).
    webhook_mode: Literal["url", "service"] = "url"
    webhook_url_host: str | None = Field(default=None, description="Host in the url (default: the listen address).")
    webhook_service_name: str = "kubelabel-webhook"
    webhook_service_namespace: str = "kubelabel-system"
    webhook_service_port: int = Field(default=443, ge=1, le=65535)
    # The ValidatingWebhookConfiguration the operator keeps up to date (Kopf's managed mode; it keeps an
    # empty MutatingWebhookConfiguration of the same name beside it). Webhook names get it as a suffix.
    webhook_configuration_name: str = "kubelabel.kubelabel.io"
    # Fail: writes are refused while the operator is unreachable. Ignore: they pass unchecked meanwhile.
    webhook_failure_policy: Literal["Fail", "Ignore"] = "Fail"
    # A certificate of yours (e.g. from cert-manager); unset: a self-signed one is made at each start.
    webhook_cert_file: str | None = None
    webhook_key_file: str | None = None
    webhook_ca_file: str | None = Field(default=None, description="CA bundle for clients (default: the cert).")
    webhook_ca_dump: str | None = Field(default=None, description="Write the CA bundle here (for curl --cacert).")

    # Defaults for every pod the operator makes (JSON, the shape of spec.pod); a resource's own spec.pod
    # fields replace these field by field. Bad JSON or a reserved label stops the operator at start.
    pod_defaults: PodSettings = Field(default_factory=PodSettings)
    # Defaults of each project's spec.networkPolicy (JSON, its shape): enabled (default false),
    # ingressNamespaceSelector (default: the namespace ingress-nginx), allowFrom.
    network_policy: NetworkPolicySpec = Field(default_factory=NetworkPolicySpec)
    # The NetworkPolicy peer that admits the operator itself (stats, ML registration, health checks).
    network_policy_operator_peer: dict[str, Any] = Field(
        default_factory=lambda: {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kubelabel-system"}},
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/name": "kubelabel", "app.kubernetes.io/component": "operator"}
            },
        }
    )

    @model_validator(mode="after")
    def _network_policy_defaults(self) -> Self:
        policy = self.network_policy
        self.network_policy = policy.model_copy(
            update={
                "enabled": bool(policy.enabled),
                "ingress_namespace_selector": policy.ingress_namespace_selector or DEFAULT_INGRESS_NAMESPACES,
            }
        )
        return self


@lru_cache
def get_settings() -> OperatorSettings:
    return OperatorSettings()
