"""Wire shapes of Label Studio's ML backend protocol (what a model server sends back).

Models are lenient where real backends differ (extra keys kept, optional fields), strict
where kubelabel depends on a shape (a prediction's `result` must be a list of objects).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class HealthResponse(_Lenient):
    status: str
    model_class: str | None = None

    @property
    def is_up(self) -> bool:
        return self.status.upper() == "UP"


class SetupResponse(_Lenient):
    model_version: str | None = None

    @field_validator("model_version", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # Some backends report a number (e.g. a timestamp).
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class ModelPrediction(_Lenient):
    """One task's prediction: Label Studio result items, a confidence and the model version."""

    result: list[dict[str, Any]] = Field(default_factory=list)
    score: float | None = None
    model_version: str | None = None

    @field_validator("model_version", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    def effective_score(self) -> float | None:
        """The prediction's score, else the mean of its items' scores (how LS backends often report)."""
        if self.score is not None:
            return self.score
        scores = [i["score"] for i in self.result if isinstance(i.get("score"), int | float)]
        return sum(scores) / len(scores) if scores else None


class PredictResponse(_Lenient):
    results: list[ModelPrediction]
    model_version: str | None = None

    @field_validator("model_version", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class WebhookResponse(_Lenient):
    status: str | None = None
    result: Any = None
    # True when the backend said it does not handle this event (200 {"status": "Unknown event"}).
    ignored: bool = False


class VersionsResponse(_Lenient):
    versions: list[str] = Field(default_factory=list)
    model_version: str | None = None
