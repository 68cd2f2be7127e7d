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
