"""Typed failures of ML backend calls; each names the outcome recorded in metrics."""

from __future__ import annotations


class MLBackendError(Exception):
    """A call to an ML backend failed. The message is safe to show and store (no secrets)."""

    outcome = "error"

    def __init__(self, message: str, *, endpoint: str = "", status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.status_code = status_code


class MLBackendUnavailable(MLBackendError):
    """Nothing answered (connection refused, DNS, reset) even after retries."""

    outcome = "unavailable"


class MLBackendRefused(MLBackendError):
    """The outbound-address policy refuses the backend's address (never retried)."""

    outcome = "refused"


class MLBackendTimeout(MLBackendError):
    """The backend did not answer within the configured timeout."""

    outcome = "timeout"


class MLBackendHTTPError(MLBackendError):
    """The backend answered with an error status (4xx, or 5xx after retries)."""

    outcome = "http_error"


class MLBackendInvalidResponse(MLBackendError):
    """The backend answered 2xx with a body that is not the protocol's (bad JSON, wrong shape)."""

    outcome = "invalid_response"
