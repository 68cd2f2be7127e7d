"""Operator settings from the environment (prefix KUBELABEL_OPERATOR_), read once at start."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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


@lru_cache
def get_settings() -> OperatorSettings:
    return OperatorSettings()
