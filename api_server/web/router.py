"""The annotation web page: a small static app over the same HTTP API the SDK uses."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

STATIC = Path(__file__).resolve().parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/label/")


@router.get("/label/")
def label_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/label/{name}")
def label_asset(name: str) -> FileResponse:
    # Only the page's own files, by exact name: no path traversal possible.
    assets = {p.name: p for p in STATIC.iterdir() if p.is_file()}
    if name not in assets:
        from api_server.common.errors import NotFound

        raise NotFound(f"no such file: {name}")
    return FileResponse(assets[name], headers={"Cache-Control": "no-cache"})
