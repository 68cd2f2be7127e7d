"""Liveness, readiness, version and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api_server import __version__
from api_server.db.session import ping
from api_server.metrics import REGISTRY

router = APIRouter(tags=["system"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process serves requests."""
    return {"status": "UP"}


@router.get("/ready")
def ready(request: Request) -> JSONResponse:
    """Readiness: the database answers."""
    try:
        ping(request.app.state.engine)
    except Exception as exc:  # any driver error means "not ready"
        return JSONResponse({"status": "DOWN", "detail": f"database unreachable: {type(exc).__name__}"}, 503)
    return JSONResponse({"status": "UP"})


@router.get("/api/version")
async def version() -> dict[str, Any]:
    """The release, in Label Studio's shape (its SDK and tools read `release`)."""
    return {"release": __version__, "label-studio-os-package": {"version": __version__}}


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    body = generate_latest(REGISTRY) + generate_latest(request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
