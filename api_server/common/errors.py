"""Errors the services raise; app.py turns them into Label Studio-shaped JSON responses.

Every error names what is wrong: `detail` is a sentence, `validation_errors` maps the
offending field (or `row N`) to its messages.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status_code = 400

    def __init__(
        self,
        detail: str,
        *,
        validation_errors: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.validation_errors = validation_errors
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status_code": self.status_code, "detail": self.detail}
        if self.validation_errors:
            body["validation_errors"] = self.validation_errors
        body.update(self.extra)
        return body


class BadRequest(ApiError):
    status_code = 400


class Unauthorized(ApiError):
    status_code = 401


class Forbidden(ApiError):
    status_code = 403


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class PayloadTooLarge(ApiError):
    status_code = 413


class UnsupportedMediaType(ApiError):
    status_code = 415


def field_error(field: str, message: str) -> BadRequest:
    return BadRequest(f"{field}: {message}", validation_errors={field: [message]})
