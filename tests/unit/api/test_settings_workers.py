"""`kubelabel serve` takes its process count from --workers, else KUBELABEL_WORKERS through the settings."""

from __future__ import annotations

from typing import Any

import pytest

from api_server import server
from api_server.settings import get_settings
from kubelabel_cli import main as cli


@pytest.mark.parametrize(("argv", "env", "expected"), [([], None, 1), ([], "3", 3), (["--workers", "2"], "3", 2)])
def test_serve_workers(monkeypatch: pytest.MonkeyPatch, argv: list[str], env: str | None, expected: int) -> None:
    if env is None:
        monkeypatch.delenv("KUBELABEL_WORKERS", raising=False)
    else:
        monkeypatch.setenv("KUBELABEL_WORKERS", env)
    get_settings.cache_clear()
    seen: dict[str, Any] = {}
    monkeypatch.setattr(server, "serve", lambda **kwargs: seen.update(kwargs) or 0)
    try:
        assert cli.main(["serve", *argv]) == 0
    finally:
        get_settings.cache_clear()
    assert seen["workers"] == expected


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_keeps_idle_connections_longer_than_clients_and_proxies(monkeypatch: pytest.MonkeyPatch, workers: int):
    """uvicorn's default (5 s) equals httpx's pool expiry and is shorter than ingress-nginx's upstream
    keep-alive (60 s): the server closing first resets a request already sent on the connection."""
    import httpx

    ran: dict[str, Any] = {}
    monkeypatch.setattr(server, "prepare", lambda *a, **k: None)
    monkeypatch.setattr(server, "create_app", lambda settings: "app")
    monkeypatch.setattr(server, "_settled", lambda app: app)  # (no gc.freeze in the test process)
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **options: ran.update(options))
    get_settings.cache_clear()
    try:
        assert server.serve(workers=workers) == 0
    finally:
        get_settings.cache_clear()
    assert ran["timeout_keep_alive"] > max(httpx.Limits().keepalive_expiry or 0, 60)
