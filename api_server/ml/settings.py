"""Tunables of the API server's ML backend calls (environment, read once)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MLSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KUBELABEL_ML_", extra="ignore")

    # Tasks per POST /predict.
    predict_batch_size: int = Field(default=32, ge=1, le=1000)
    # Total tries of a call that failed to connect or got a 5xx.
    retries: int = Field(default=3, ge=1, le=10)
    # Cap on /health and /setup calls made while an API request waits (create, update, retrieve).
    check_timeout: float = Field(default=10.0, gt=0)
    # Background threads for ML work when no job worker runs it (predictions, training).
    workers: int = Field(default=2, ge=1, le=32)
    # Authorization header value sent to backends that have no basic auth of their own
    # (e.g. "Bearer ..." from a Secret). Never logged, never returned by the API.
    auth_header: str | None = Field(default=None, repr=False)


@lru_cache
def get_ml_settings() -> MLSettings:
    return MLSettings()
