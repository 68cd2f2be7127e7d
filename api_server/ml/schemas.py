"""/api/ml I/O in Label Studio's field names (MLBackend, MLBackendRequest)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class State(StrEnum):
    connected = "CO"
    disconnected = "DI"
    error = "ER"
    training = "TR"
    predicting = "PR"


READABLE_STATE = {
    State.connected: "Connected",
    State.disconnected: "Disconnected",
    State.error: "Error",
    State.training: "Training",
    State.predicting: "Predicting",
}


class AuthMethod(StrEnum):
    none = "NONE"
    basic = "BASIC_AUTH"


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/") if value else value


class MLBackendUpdate(BaseModel):
    """Writable fields; all optional (PATCH)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    project: int | None = None
    title: str | None = Field(default=None, max_length=500)
    description: str | None = None
    is_interactive: bool | None = None
    auth_method: AuthMethod | None = None
    basic_auth_user: str | None = Field(default=None, max_length=200)
    basic_auth_pass: str | None = Field(default=None, max_length=500)
    timeout: float | None = Field(default=None, gt=0, le=3600)
    extra_params: dict[str, Any] | None = None
    auto_update: bool | None = None
    # Accepted from Label Studio clients; kubelabel sets these itself from the backend's answers.
    model_version: str | None = None
    state: State | None = None
    error_message: str | None = None
    readable_state: str | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return _http_url(value)


class MLBackendCreate(MLBackendUpdate):
    url: str = Field(min_length=1, max_length=2000)
    project: int


class MLBackendPublic(BaseModel):
    id: int
    url: str
    title: str
    description: str
    project: int
    is_interactive: bool
    auth_method: str
    basic_auth_user: str | None
    basic_auth_pass_is_set: bool
    timeout: float
    extra_params: dict[str, Any]
    auto_update: bool
    model_version: str
    state: str
    readable_state: str
    error_message: str | None
    created_at: datetime
    updated_at: datetime


class TrainRequest(BaseModel):
    use_ground_truth: bool = False


class InteractiveRequest(BaseModel):
    task: int
    context: Any = None


class PredictRequest(BaseModel):
    """Which tasks to predict: ids, or Label Studio's data-manager selection."""

    model_config = ConfigDict(extra="ignore")

    task_ids: list[int] | None = Field(default=None, max_length=100_000)
    selectedItems: dict[str, Any] | None = None  # noqa: N815 (Label Studio's name)


class PredictResponse(BaseModel):
    model_version: str
    predictions: int
    tasks: int
    detail: str = ""


class VersionsResponse(BaseModel):
    versions: list[str]
    message: str = ""


class TrainResponse(BaseModel):
    model_version: str
    result: Any = None
    detail: str = ""


class InteractiveResponse(BaseModel):
    data: dict[str, Any] | None
