"""A small async Kubernetes client: get, list, create, merge-patch, delete. Nothing else talks to the API."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Mapping
from typing import Any

import httpx

from api_server.common import retry
from kubelabel_operator.k8s.config import Connection
from kubelabel_operator.k8s.resources import Resource

MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def _ssl_context(conn: Connection) -> ssl.SSLContext | bool:
    if conn.insecure:
        return False
    if not conn.server.startswith("https"):
        return True
    ctx = ssl.create_default_context(cafile=conn.ca_path) if conn.ca_path else ssl.create_default_context()
    if conn.cert_path and conn.key_path:
        ctx.load_cert_chain(conn.cert_path, conn.key_path)
    return ctx


def matches(labels: Mapping[str, str] | None, selector: Mapping[str, str]) -> bool:
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


class K8s:
    """Async access to the Kubernetes API with the operator's credentials."""

    def __init__(self, conn: Connection, timeout: float = 30.0) -> None:
        self.conn = conn
        # Waiting for a free pooled connection is not an error: with hundreds of objects reconciling
        # at once, calls queue here instead of failing (each call still has its own timeout).
        self._http = httpx.AsyncClient(
            base_url=conn.server,
            verify=_ssl_context(conn),
            timeout=httpx.Timeout(timeout, pool=None),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token = self.conn.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        content_type = kwargs.pop("content_type", None)

        def attempt() -> Awaitable[httpx.Response]:
            return self._http.request(method, path, headers=self._headers(content_type), **kwargs)

        # A kept-alive connection closed by the server, or an API server restart: 3 tries in all,
        # 0.2 s then 0.4 s apart. Every call here is safe to repeat: creates are by name (409 on a
        # repeat), patches are merges.
        try:
            response = await retry.call_async(
                attempt, on=(httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError), delays=(0.2, 0.4)
            )
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError) as exc:
            raise ApiError(503, f"{method} {path}: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise ApiError(504, f"{method} {path}: {type(exc).__name__}") from exc
        if response.status_code >= 400 and response.status_code != 404:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise ApiError(response.status_code, str(message)[:500])
        return response

    async def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        response = await self._request("GET", res.path(namespace, name))
        return None if response.status_code == 404 else response.json()

    async def list(
        self, res: Resource, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else None
        response = await self._request("GET", res.path(namespace), params=params)
        if response.status_code == 404:
            return []
        items = response.json().get("items", [])
        # Filter here too: selectors are cheap to re-check and not every API (mock) honours them.
        return [i for i in items if not labels or matches(i.get("metadata", {}).get("labels"), labels)]

    async def create(self, res: Resource, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._request("POST", res.path(namespace), json=body)
        if response.status_code == 404:
            raise ApiError(404, f"cannot create {res.kind}: resource or namespace not found")
        created: dict[str, Any] = response.json()
        return created

    async def patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any] | None:
        response = await self._request(
            "PATCH", res.path(namespace, name, subresource), json=patch, content_type=MERGE_PATCH
        )
        return None if response.status_code == 404 else response.json()

    async def patch_status(
        self, res: Resource, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any] | None:
        return await self.patch(res, namespace, name, {"status": status}, subresource="status")

    async def delete(self, res: Resource, namespace: str | None, name: str) -> bool:
        response = await self._request("DELETE", res.path(namespace, name), json={"propagationPolicy": "Background"})
        return response.status_code != 404
