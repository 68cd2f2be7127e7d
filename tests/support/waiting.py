"""The one wait of the tests: poll a check until it holds, or fail naming what was awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

# What a check may raise while the state it reads is still forming (a missing key, an assert on a
# half-built object): polled again, and shown as the last value if the wait times out.
NOT_YET = (AssertionError, KeyError, TypeError, IndexError)


def wait_until(check: Callable[[], T], what: str = "condition", timeout: float = 60.0, *, interval: float = 0.05) -> T:
    """The first truthy result of `check`, or an AssertionError naming `what` and the last result."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
            if last:
                return last
        except NOT_YET as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")
        time.sleep(interval)


async def wait_until_async(
    check: Callable[[], Awaitable[T] | T], what: str = "condition", timeout: float = 60.0, *, interval: float = 0.1
) -> T:
    """wait_until inside an event loop (a server the test runs on the same loop keeps serving);
    `check` may be a coroutine function."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = check()
            last = await result if asyncio.iscoroutine(result) else result
            if last:
                return last  # type: ignore[no-any-return]
        except NOT_YET as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)
