"""Helpers shared by the operator's integration tests."""

from __future__ import annotations

from typing import Any

from tests.support.net import free_port
from tests.support.waiting import wait_until_async as eventually  # noqa: F401  (the operator tests' name)

NS = "default"
# Fixed per test session: the operator starts its metrics server once per process.
METRICS_PORT = free_port()


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == ctype:
            return cond  # type: ignore[no-any-return]
    return {}


def namespaced(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for doc in docs:
        doc["metadata"]["namespace"] = NS
    return docs
