"""Client for ML backends speaking Label Studio's protocol: /health, /setup, /predict, /webhook.

Every call is bounded: connect and read timeouts, a cap on the response size, and a fixed
number of retries (with exponential backoff) for failures that are worth retrying: nothing
listening yet, and 5xx answers. A read timeout is not retried: a slow backend stays slow,
and the caller (an import, an annotator's request) must not wait a multiple of the timeout.
Failures raise typed errors (api_server.ml.errors) with messages fit for an error column:
they name the status and the kind of failure, never the backend's answer (the backend's URL is
user-given, so its answers could be an internal service's). Connections go through the
outbound-address policy (api_server.common.egress, kind "ml"); a refused address is not retried.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from api_server.common import egress, retry
from api_server.common.secrets import without_credentials
from api_server.ml.errors import (
    MLBackendError,
    MLBackendHTTPError,
    MLBackendInvalidResponse,
    MLBackendRefused,
    MLBackendTimeout,
    MLBackendUnavailable,
)
from api_server.ml.protocol import (
    HealthResponse,
    ModelPrediction,
    PredictResponse,
    SetupResponse,
    VersionsResponse,
    WebhookResponse,
)

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

# Called after every HTTP attempt: (endpoint, outcome, seconds). Metrics hook in here.
Observer = Callable[[str, str, float], None]


@dataclass(frozen=True)
class BackendAuth:
    """Basic auth (Label Studio's BASIC_AUTH) and/or extra headers (e.g. a bearer token)."""

    basic_user: str | None = None
    basic_pass: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def as_headers(self) -> dict[str, str]:
        out = dict(self.headers)
        if self.basic_user:
            raw = f"{self.basic_user}:{self.basic_pass or ''}".encode()
            out["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        return out


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # total tries for retryable failures
    backoff: float = 0.2  # seconds before the 2nd try; doubles each time
    max_backoff: float = 2.0

    def delays(self) -> Iterator[float]:
        return retry.backoff(self.backoff, retries=self.attempts - 1, cap=self.max_backoff)


@dataclass(frozen=True)
class _Reply:
    status_code: int
    content: bytes


class _Retryable(Exception):
    def __init__(self, error: MLBackendError) -> None:
        super().__init__(error.message)  # what the retry is logged with
        self.error = error


class MLBackendClient:
    """One ML backend. Thread-safe (httpx.Client is); use as a context manager or close()."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        auth: BackendAuth | None = None,
        retry: RetryPolicy | None = None,
        batch_size: int = 32,
        max_response_bytes: int = 64 * 1024 * 1024,
        observer: Observer | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"ML backend URL must be http(s)://..., got {without_credentials(url)!r}")
        # Credentials in the URL (http://user:pass@host) go to the auth handler, never to attributes.
        parts = urlsplit(url.rstrip("/"))
        self.url = self.display_url = without_credentials(url.rstrip("/"))
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.batch_size = max(1, batch_size)
        self.max_response_bytes = max_response_bytes
        self.observer = observer
        basic = httpx.BasicAuth(parts.username or "", parts.password or "") if parts.username else None
        self._http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
            headers={"Accept": "application/json", **(auth.as_headers() if auth else {})},
            auth=basic,
            # Our transport caps the answer at the same size as _read_capped (a second guard).
            transport=transport or egress.PinnedTransport("ml", limits=egress.Limits(max_bytes=max_response_bytes + 1)),
            follow_redirects=False,
            trust_env=False,
        )

    def __enter__(self) -> MLBackendClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- protocol calls ----------------------------------------------------------------

    def health(self) -> HealthResponse:
        response = self._call("GET", "/health", None, HealthResponse)
        if not response.is_up:
            raise MLBackendInvalidResponse(
                f"ML backend {self.display_url} /health does not report status UP", endpoint="/health"
            )
        return response

    def setup(
        self,
        *,
        project: str,
        label_config: str,
        model_version: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        hostname: str | None = None,
        access_token: str | None = None,
    ) -> SetupResponse:
        body: dict[str, Any] = {
            "project": project,
            "schema": label_config,
            "model_version": model_version,
            "extra_params": dict(extra_params or {}),
        }
        if hostname:
            body["hostname"] = hostname
        if access_token:
            body["access_token"] = access_token
        return self._call("POST", "/setup", body, SetupResponse)

    def predict(
        self,
        tasks: Sequence[Mapping[str, Any]],
        *,
        label_config: str,
        project: str,
        model_version: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> list[ModelPrediction | None]:
        """Predictions aligned with `tasks` (None where the backend gave none), in batches."""
        out: list[ModelPrediction | None] = []
        for start in range(0, len(tasks), self.batch_size):
            batch = list(tasks[start : start + self.batch_size])
            body = {
                "tasks": batch,
                "model_version": model_version,
                "project": project,
                "label_config": label_config,
                "params": dict(params or {"context": None}),
            }
            parsed = self._call("POST", "/predict", body, PredictResponse, expect=len(batch))
            if not parsed.results:
                out.extend([None] * len(batch))  # an untrained model may answer with nothing
                continue
            for prediction in parsed.results:
                if prediction.model_version is None:
                    prediction.model_version = parsed.model_version
                out.append(prediction)
        return out

    def webhook(self, action: str, payload: Mapping[str, Any]) -> WebhookResponse:
        """Send a Label Studio webhook event (ANNOTATION_CREATED, START_TRAINING, ...)."""
        return self._call("POST", "/webhook", {**payload, "action": action}, WebhookResponse)

    def train(self, *, project: str, label_config: str, annotations: Sequence[Mapping[str, Any]]) -> WebhookResponse:
        """Legacy POST /train (backends written before Label Studio 1.4.1)."""
        body = {
            "project": project,
            "label_config": label_config,
            "annotations": list(annotations),
            "params": {},
        }
        return self._call("POST", "/train", body, WebhookResponse)

    def versions(self, project: str | None = None) -> VersionsResponse:
        path = f"/versions?project={project}" if project else "/versions"
        return self._call("GET", path, None, VersionsResponse)

    # --- transport -----------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any, model: type[M], *, expect: int | None = None) -> M:
        """One protocol call (with its retries): observed once, with its final outcome."""
        started = time.monotonic()
        outcome = "ok"
        try:
            reply = self._request(method, path, body)
            parsed = self._parse(path, reply, model)
            if isinstance(parsed, WebhookResponse):
                parsed.ignored = reply.status_code == 200 and parsed.status == "Unknown event"
            if isinstance(parsed, PredictResponse) and parsed.results and len(parsed.results) != expect:
                raise MLBackendInvalidResponse(
                    f"ML backend {self.display_url} {path} returned {len(parsed.results)} results for {expect} tasks",
                    endpoint=path,
                )
            return parsed
        except MLBackendError as exc:
            outcome = exc.outcome
            raise
        finally:
            if self.observer is not None:
                self.observer(path, outcome, time.monotonic() - started)

    def _request(self, method: str, path: str, body: Any) -> _Reply:
        # Only _Retryable failures (nothing listening, dropped before an answer, 5xx) are tried again,
        # after the policy's delays (0.2 s doubling to 2 s, 3 tries in all by default).
        def note(failure: BaseException, delay: float) -> None:
            log.info("%s; retrying in %.2fs", failure, delay)

        try:
            return retry.call(
                lambda: self._attempt(method, path, body), on=(_Retryable,), delays=self.retry.delays(), on_retry=note
            )
        except _Retryable as retryable:
            raise retryable.error from None

    def _attempt(self, method: str, path: str, body: Any) -> _Reply:
        where = f"ML backend {self.display_url} {method} {path}"
        content = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            with self._http.stream(method, path, content=content, headers=headers) as response:
                reply = _Reply(response.status_code, self._read_capped(response, where, path))
        except egress.EgressRefused as exc:
            raise MLBackendRefused(f"{where} refused: {exc.reason}", endpoint=path) from None
        except egress.ResponseTooLarge:
            raise MLBackendInvalidResponse(
                f"{where} response exceeds {self.max_response_bytes} bytes", endpoint=path
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
            # Refused, or dropped before any answer: worth another try.
            error = MLBackendUnavailable(f"{where} unreachable: {type(exc).__name__}", endpoint=path)
            raise _Retryable(error) from None
        except httpx.TimeoutException:
            raise MLBackendTimeout(f"{where} timed out after {self.timeout:g}s", endpoint=path) from None
        except httpx.HTTPError as exc:
            raise MLBackendUnavailable(f"{where} failed: {type(exc).__name__}", endpoint=path) from None
        if reply.status_code >= 400:
            http_error = MLBackendHTTPError(
                f"{where} answered HTTP {reply.status_code}",
                endpoint=path,
                status_code=reply.status_code,
            )
            if reply.status_code >= 500:
                raise _Retryable(http_error)
            raise http_error
        return reply

    def _read_capped(self, response: httpx.Response, where: str, path: str) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                raise MLBackendInvalidResponse(
                    f"{where} response exceeds {self.max_response_bytes} bytes", endpoint=path
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _parse(self, path: str, reply: _Reply, model: type[M]) -> M:
        where = f"ML backend {self.display_url} {path}"
        try:
            data = json.loads(reply.content) if reply.content.strip() else {}
        except ValueError:
            raise MLBackendInvalidResponse(f"{where} returned invalid JSON", endpoint=path) from None
        if not isinstance(data, dict):
            if model is not WebhookResponse:
                raise MLBackendInvalidResponse(
                    f"{where} returned a JSON {type(data).__name__}, expected an object", endpoint=path
                )
            data = {"result": data}  # training endpoints may answer with anything
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "body"
            raise MLBackendInvalidResponse(
                f"{where} returned an unexpected shape ({loc}: {first['msg']})", endpoint=path
            ) from None
