"""The one retry loop: call, and on a failure the caller names as transient, wait and call again.

Each caller keeps its own conditions, delays and limits beside the call; this module only runs
them, so a change to how retrying works (logging, sleeping, what a last failure raises) is made
once. Self-contained (standard library only): the operator imports it too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

# Told of each retry before its wait: (the failure, the seconds about to be waited).
OnRetry = Callable[[BaseException, float], None]


def backoff(first: float, *, retries: int, factor: float = 2.0, cap: float = float("inf")) -> Iterator[float]:
    """The waits before each of `retries` further tries: first, first*factor, ... each at most `cap`."""
    delay = first
    for _ in range(max(retries, 0)):
        yield min(delay, cap)
        delay *= factor


def call(
    attempt: Callable[[], T],
    *,
    on: tuple[type[BaseException], ...],
    delays: Iterable[float],
    on_retry: OnRetry | None = None,
) -> T:
    """`attempt()`, tried again after each delay while it raises one of `on`; the last failure propagates.

    One try plus one per delay; a delay of 0 retries at once.
    """
    waits = iter(delays)
    while True:
        try:
            return attempt()
        except on as exc:
            delay = _wait_after(exc, waits, on_retry)
        if delay > 0:
            time.sleep(delay)


async def call_async(
    attempt: Callable[[], Awaitable[T]],
    *,
    on: tuple[type[BaseException], ...],
    delays: Iterable[float],
    on_retry: OnRetry | None = None,
) -> T:
    """`call` for coroutines: the waits do not block the event loop."""
    waits = iter(delays)
    while True:
        try:
            return await attempt()
        except on as exc:
            delay = _wait_after(exc, waits, on_retry)
        if delay > 0:
            await asyncio.sleep(delay)


def _wait_after(failure: BaseException, waits: Iterator[float], on_retry: OnRetry | None) -> float:
    """The wait before the next try, or `failure` raised again when the tries are used up."""
    delay = next(waits, None)
    if delay is None:
        raise failure
    if on_retry is not None:
        on_retry(failure, delay)
    return delay
