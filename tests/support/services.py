"""Availability of the external services tests use.

On a developer machine a missing PostgreSQL or Redis skips the tests that need it, with
the reason printed by pytest's summary. In CI (`CI=true`) a missing service is a
failure: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

POSTGRES_URL = os.environ.get("KUBELABEL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KUBELABEL_TEST_REDIS", "redis://127.0.0.1:6379/0")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI."""
    if IN_CI:
        pytest.fail(f"required in CI but unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def require_port(name: str, host: str, port: int) -> None:
    if not port_open(host, port):
        unavailable(f"{name} is not reachable on {host}:{port}")


def require_executable(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"`{name}` not found ({hint})")
    return path  # type: ignore[return-value]
