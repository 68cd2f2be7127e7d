"""Read a project's annotated tasks from a Label Studio compatible API (the export endpoint).

The API's address may come from a /setup call (`hostname`), so the fetch goes through the
outbound-address policy (kind "ml"), capped in size and time.
"""

from __future__ import annotations

from typing import Any

import httpx

from api_server.common import egress

MAX_EXPORT_BYTES = 512 << 20


class SourceError(RuntimeError):
    """The API could not be read; training falls back to the examples already known."""


def auth_header(token: str) -> str:
    # Label Studio personal access tokens are JWTs (three dot-separated parts) sent as Bearer.
    return f"Bearer {token}" if token.count(".") == 2 else f"Token {token}"


def fetch_annotated_tasks(api_url: str, token: str | None, project_id: str, timeout: float) -> list[dict[str, Any]]:
    url = f"{api_url.rstrip('/')}/api/projects/{project_id}/export"
    headers = {"Authorization": auth_header(token)} if token else {}
    limits = egress.Limits(max_bytes=MAX_EXPORT_BYTES, max_seconds=timeout * 10)
    try:
        with egress.client("ml", timeout=timeout, limits=limits) as http:
            response = http.get(url, params={"exportType": "JSON", "download_all_tasks": "false"}, headers=headers)
    except egress.EgressRefused as exc:
        raise SourceError(f"{url} refused: {exc.reason}") from exc
    except httpx.HTTPError as exc:
        raise SourceError(f"cannot reach {url}: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise SourceError(f"{url} answered HTTP {response.status_code}")
    try:
        tasks = response.json()
    except ValueError as exc:
        raise SourceError(f"{url} did not return JSON") from exc
    if not isinstance(tasks, list):
        raise SourceError(f"{url} did not return a list of tasks")
    return [t for t in tasks if isinstance(t, dict)]
