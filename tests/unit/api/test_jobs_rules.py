"""Job queue pure rules: backoff schedule, handler registration, Redis URL redaction."""

from __future__ import annotations

import pytest

from api_server.common.secrets import masked_url
from api_server.jobs import job_handler
from api_server.jobs.queue import backoff_seconds


def test_backoff_doubles_and_is_capped():
    assert [backoff_seconds(n, 5, 3600) for n in range(0, 6)] == [0, 5, 10, 20, 40, 80]
    assert backoff_seconds(20, 5, 3600) == 3600
    assert backoff_seconds(10_000, 5, 3600) == 3600  # no overflow on absurd counts
    assert backoff_seconds(3, 0, 10) == 0


def test_one_handler_per_kind():
    @job_handler("unit.unique")
    def first(ctx):  # type: ignore[no-untyped-def]
        return None

    with pytest.raises(ValueError, match="unit.unique"):

        @job_handler("unit.unique")
        def second(ctx):  # type: ignore[no-untyped-def]
            return None


def test_redis_passwords_never_reach_logs():
    assert masked_url("redis://:hunter2@redis.ns.svc:6379/0") == "redis://:********@redis.ns.svc:6379/0"
    assert masked_url("rediss://user:hunter2@r:6380") == "rediss://user:********@r:6380"
    assert masked_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
