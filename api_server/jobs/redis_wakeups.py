"""Redis as the jobs' doorbell: a list of job ids that workers block on (BLPOP), and a
register of the workers that are alive (so the API knows whether anyone will answer).

The ids are hints, not the queue: a worker woken by one claims whatever job is due in the
table. So a lost or duplicate id costs nothing, and while Redis is down everything still
works through polling (a warning is logged once per outage, not per job).
"""

from __future__ import annotations

import logging
import threading

import redis

from api_server.common.secrets import masked_url

log = logging.getLogger(__name__)


class RedisWakeups:
    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.key = f"{prefix}:jobs"
        # Standing workers and when they last said so (a sorted set scored by Redis time).
        self.workers_key = f"{prefix}:workers"
        # Short timeouts: a request that enqueued a job must not hang on an unreachable Redis.
        self._client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
        # Blocking pops need a socket timeout longer than the pop itself.
        self._blocking = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=None)
        self._lock = threading.Lock()
        self._healthy: bool | None = None  # unknown until the first call

    @property
    def healthy(self) -> bool:
        return bool(self._healthy)

    @property
    def known(self) -> bool:
        return self._healthy is not None

    def _up(self) -> None:
        with self._lock:
            was, self._healthy = self._healthy, True
        if was is False:
            log.info("Redis at %s is reachable again; jobs go through it again", masked_url(self.url))

    def _down(self, exc: BaseException) -> None:
        with self._lock:
            was, self._healthy = self._healthy, False
        if was is not False:
            log.warning(
                "Redis at %s is unreachable (%s: %s); jobs stay in the database and run from there "
                "(in-process or by polling) until it is back. Nothing is lost.",
                masked_url(self.url),
                type(exc).__name__,
                exc,
            )

    def ping(self) -> bool:
        try:
            self._client.ping()
        except (redis.RedisError, OSError) as exc:
            self._down(exc)
            return False
        self._up()
        return True

    def push(self, job_ids: list[int]) -> bool:
        """Announce jobs to workers; False when Redis could not take them (they still exist)."""
        if self._healthy is False:
            return False  # don't pay a connect timeout per request during an outage; ping() re-checks
        try:
            self._client.rpush(self.key, *job_ids)
        except (redis.RedisError, OSError) as exc:
            self._down(exc)
            return False
        self._up()
        return True

    def wait(self, timeout: float) -> bool:
        """Block until an id arrives or `timeout` passes; True when one arrived."""
        try:
            got = self._blocking.blpop([self.key], timeout=max(timeout, 0.01))
        except (redis.RedisError, OSError) as exc:
            self._down(exc)
            return False
        self._up()
        return got is not None

    def _now(self) -> float:
        seconds, micros = self._client.time()
        return seconds + micros / 1e6

    def announce(self, worker_id: str, ttl: float) -> None:
        """Say that this worker is alive (for `ttl` seconds)."""
        try:
            now = self._now()
            pipe = self._client.pipeline()
            pipe.zadd(self.workers_key, {worker_id: now})
            pipe.zremrangebyscore(self.workers_key, "-inf", now - ttl)
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self._down(exc)

    def retire(self, worker_id: str) -> None:
        try:
            self._client.zrem(self.workers_key, worker_id)
        except (redis.RedisError, OSError) as exc:
            self._down(exc)

    def workers_alive(self, ttl: float) -> int:
        """How many workers announced themselves within `ttl` seconds (0 when Redis is down)."""
        try:
            return int(self._client.zcount(self.workers_key, self._now() - ttl, "+inf"))
        except (redis.RedisError, OSError) as exc:
            self._down(exc)
            return 0

    def close(self) -> None:
        self._client.close()
        self._blocking.close()
