"""The one retry loop (api_server.common.retry) and the callers' limits it runs."""

from __future__ import annotations

import pytest

from api_server.common import retry


def test_backoff_doubles_to_the_cap_and_stops_after_the_retries() -> None:
    assert list(retry.backoff(0.5, retries=6, cap=10.0)) == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert list(retry.backoff(0.2, retries=0)) == []


def test_call_retries_only_the_named_failures_and_raises_the_last() -> None:
    tries: list[int] = []
    seen: list[float] = []

    def flaky() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionError(len(tries))
        return "ok"

    assert retry.call(flaky, on=(ConnectionError,), delays=(0.0, 0.01), on_retry=lambda e, d: seen.append(d)) == "ok"
    assert (len(tries), seen) == (3, [0.0, 0.01])

    tries.clear()
    with pytest.raises(ConnectionError, match="2"):
        retry.call(flaky, on=(ConnectionError,), delays=(0.0,))
    assert len(tries) == 2

    def wrong() -> None:
        tries.append(1)
        raise ValueError("not transient")

    tries.clear()
    with pytest.raises(ValueError):
        retry.call(wrong, on=(ConnectionError,), delays=(0.0, 0.0))
    assert len(tries) == 1
