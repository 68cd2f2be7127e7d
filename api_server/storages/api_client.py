"""The HTTP side of `kubelabel sync`: the project's storage API, with retries.

Every call the sync makes is idempotent (upsert by external name, upsert of links by key),
so transient failures (connection errors, 429, 5xx) are retried with backoff.
"""

from __future__ import annotations

from typing import Any

import httpx

from api_server.common import retry
from api_server.storages.import_sync import BatchResult, ImportItem

RETRY_STATUS = {429, 500, 502, 503, 504}


class ApiError(Exception):
    """The API refused a request (4xx) or stayed unavailable after the retries."""


class _Transient(Exception):
    """An answer worth another try (429, 5xx); the last one is reported as it is."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response


class StorageApi:
    def __init__(self, base_url: str, token: str, *, timeout: float = 120.0, retries: int = 6) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Token {token}"},
            timeout=timeout,
        )
        self._retries = retries

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        def attempt() -> httpx.Response:
            response = self._client.request(method, path, **kwargs)
            if response.status_code in RETRY_STATUS:
                raise _Transient(response)
            return response

        # Connection errors, 429 and 5xx: `retries` more tries, waiting 0.5 s doubling to at most 10 s.
        try:
            response = retry.call(
                attempt,
                on=(httpx.TransportError, _Transient),
                delays=retry.backoff(0.5, retries=self._retries, cap=10.0),
            )
        except httpx.TransportError as exc:
            raise ApiError(f"{method} {path}: API unreachable ({type(exc).__name__})") from None
        except _Transient as transient:
            response = transient.response
        if response.status_code >= 400:
            raise ApiError(f"{method} {path}: HTTP {response.status_code}: {_detail(response)}")
        return response.json() if response.content else None

    # -- storages ----------------------------------------------------------------------------
    @staticmethod
    def base(direction: str, type_: str) -> str:
        return f"/api/storages/export/{type_}" if direction == "export" else f"/api/storages/{type_}"

    def upsert_storage(self, direction: str, type_: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create the storage, or update the one with the same `external_name`."""
        return dict(self.request("POST", self.base(direction, type_), json=body))

    def patch_storage(self, direction: str, type_: str, storage_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("PATCH", f"{self.base(direction, type_)}/{storage_id}", json=body))

    def get_storage(self, direction: str, type_: str, storage_id: int) -> dict[str, Any]:
        return dict(self.request("GET", f"{self.base(direction, type_)}/{storage_id}"))

    def start_sync(self, direction: str, type_: str, storage_id: int) -> dict[str, Any]:
        return dict(self.request("POST", f"{self.base(direction, type_)}/{storage_id}/sync"))


class HttpSink:
    """ImportSink over the batch link endpoints of an import storage."""

    def __init__(self, api: StorageApi, type_: str, storage_id: int) -> None:
        self._api = api
        self._path = f"/api/storages/{type_}/{storage_id}"

    def known_etags(self, keys: list[str]) -> dict[str, str]:
        answer = self._api.request("POST", f"{self._path}/known-keys", json={"keys": keys})
        return dict(answer["etags"])

    def submit(self, items: list[ImportItem], *, update_changed: bool) -> BatchResult:
        answer = self._api.request(
            "POST",
            f"{self._path}/links",
            json={"items": [item.wire() for item in items], "update_changed": update_changed},
        )
        return BatchResult(
            created=answer["created"],
            updated=answer["updated"],
            unchanged=answer["unchanged"],
            errors=list(answer.get("errors") or []),
        )


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:500]
    return str(body)[:300]
