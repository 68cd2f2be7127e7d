"""Helpers shared by the operator's integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tests.support.net import free_port

T = TypeVar("T")
NS = "default"
# Fixed per test session: the operator starts its metrics server once per process.
METRICS_PORT = free_port()


async def eventually(check: Callable[[], Awaitable[T] | T], timeout: float = 60.0, interval: float = 0.1) -> T:
    """Poll without blocking the loop the emulator serves on; return the first truthy result."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            last = result
            if result:
                return result  # type: ignore[return-value]
        except (KeyError, AssertionError, TypeError) as exc:
            last = exc
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last: {last!r}")
        await asyncio.sleep(interval)


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == ctype:
            return cond  # type: ignore[no-any-return]
    return {}


def namespaced(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for doc in docs:
        doc["metadata"]["namespace"] = NS
    return docs
