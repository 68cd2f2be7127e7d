"""Calls to a project's API server with its admin token: stats and ML backend registration.

`http_client` is the operator's one HTTP client for these and for external ML backends (whose
`spec.url` is user-given): every connection goes through the outbound-address policy (kind
"operator"), pinned to the checked address, with answers capped in size.
"""

from __future__ import annotations

from typing import Any

import httpx

from api_server.common import egress
from kubelabel_operator.builders import project as project_build
from kubelabel_operator.k8s import K8s
from kubelabel_operator.k8s.resources import SECRETS
from kubelabel_operator.reconcilers.refs import secret_value

PROJECT_ID = 1
MAX_ANSWER_BYTES = 16 << 20  # project and backend answers are small JSON documents


class ProjectApiError(Exception):
    pass


def http_client(timeout: float, *, policy: egress.Policy | None = None) -> httpx.AsyncClient:
    limits = egress.Limits(max_bytes=MAX_ANSWER_BYTES, max_seconds=timeout * 3)
    # Read here, at the operator's start: a malformed KUBELABEL_EGRESS_ALLOW stops it at once.
    return egress.async_client("operator", timeout=timeout, limits=limits, policy=policy or egress.current_policy())


async def admin_token(k8s: K8s, namespace: str, project: str) -> str:
    secret = await k8s.get(SECRETS, namespace, project_build.admin_secret_name(project))
    token = secret_value(secret, project_build.TOKEN_KEY) if secret else None
    if not token:
        raise ProjectApiError(f"admin token Secret of project {project!r} is not there yet")
    return token


def api_url(template: str, namespace: str, project: str) -> str:
    return template.format(service=project_build.api_name(project), namespace=namespace, project=project).rstrip("/")


async def _call(http: httpx.AsyncClient, method: str, url: str, token: str, **kwargs: Any) -> Any:
    try:
        response = await http.request(method, url, headers={"Authorization": f"Token {token}"}, **kwargs)
    except egress.EgressRefused as exc:
        raise ProjectApiError(f"{method} {url}: refused: {exc.reason}") from exc
    except httpx.HTTPError as exc:
        raise ProjectApiError(f"{method} {url}: {type(exc).__name__}") from exc
    if not 200 <= response.status_code < 300:
        raise ProjectApiError(f"{method} {url}: HTTP {response.status_code}")
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise ProjectApiError(f"{method} {url}: not JSON") from exc


async def project_stats(http: httpx.AsyncClient, base: str, token: str) -> dict[str, int]:
    data = await _call(http, "GET", f"{base}/api/projects/{PROJECT_ID}", token)
    return {
        "tasks": int(data.get("task_number") or 0),
        "labeledTasks": int(data.get("num_tasks_with_annotations") or 0),
        "annotations": int(data.get("total_annotations_number") or 0),
    }


async def register_backend(http: httpx.AsyncClient, base: str, token: str, wanted: dict[str, Any]) -> int:
    """Create or update the backend by title (idempotent); returns its id in the project."""
    listed = await _call(http, "GET", f"{base}/api/ml", token, params={"project": PROJECT_ID})
    items = listed.get("results", []) if isinstance(listed, dict) else listed or []
    existing = next((b for b in items if b.get("title") == wanted["title"]), None)
    if existing is None:
        created = await _call(http, "POST", f"{base}/api/ml", token, json=wanted)
        if not isinstance(created, dict) or "id" not in created:
            raise ProjectApiError(f"POST {base}/api/ml: no id in the answer")
        return int(created["id"])
    # A password is never read back (write-only), so a backend with one is updated at every check:
    # a rotated Secret takes effect within one health-check interval.
    if any(existing.get(k) != v for k, v in wanted.items() if k != "project"):
        await _call(http, "PATCH", f"{base}/api/ml/{existing['id']}", token, json=wanted)
    return int(existing["id"])


async def unregister_backend(http: httpx.AsyncClient, base: str, token: str, title: str) -> bool:
    listed = await _call(http, "GET", f"{base}/api/ml", token, params={"project": PROJECT_ID})
    items = listed.get("results", []) if isinstance(listed, dict) else listed or []
    found = [b for b in items if b.get("title") == title]
    for backend in found:
        await _call(http, "DELETE", f"{base}/api/ml/{backend['id']}", token)
    return bool(found)
