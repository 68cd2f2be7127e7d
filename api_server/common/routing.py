"""API paths answer both `/path` and `/path/`, with one route each.

Label Studio's paths end in a slash and its clients call them that way, while hand-written
clients often drop it. A redirect would lose POST bodies for many clients, so both forms are
served: `TrailingSlash` strips the slash from `/api/...` requests before routing, and
`DualSlashRouter` registers each route under its slash-less form. A second route per path
would double the table FastAPI scans on every request.

The declared (Label Studio) form is kept in `CANONICAL` for the OpenAPI schema and metrics.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

API_PREFIX = "/api/"
# Slash-less route path -> the path as declared (what the schema and metrics show).
CANONICAL: dict[str, str] = {}


def canonical(path: str) -> str:
    return CANONICAL.get(path, path)


class DualSlashRouter(APIRouter):
    def add_api_route(self, path: str, endpoint: Any, **kwargs: Any) -> None:  # type: ignore[override]
        declared = self.prefix + path
        stripped = declared.rstrip("/")
        if declared.startswith(API_PREFIX) and stripped != declared:
            CANONICAL[stripped] = declared
            path = path.rstrip("/")
        super().add_api_route(path, endpoint, **kwargs)


class TrailingSlash:
    """ASGI middleware: `/api/x/` is routed as `/api/x` (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.endswith("/") and path.startswith(API_PREFIX) and path != API_PREFIX:
            scope = {**scope, "path": path.rstrip("/")}
        await self.app(scope, receive, send)


def canonical_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every path in its declared form."""
    schema["paths"] = {canonical(path): item for path, item in schema.get("paths", {}).items()}
    return schema
