"""Sign-in attempt limits, per username and per client address.

Every attempt is counted before the password is checked, so parallel guesses cannot slip past
the limit: once a key has `max_failures` attempts without a success, further attempts are refused
(429 with Retry-After) for `lockout` seconds, doubling with each failure after that (at most an
hour). A successful sign-in clears its username's count and takes back its own attempt from the
address's count. Addresses get four times the allowance (one address may be a whole office), and
unknown usernames are counted like real ones, so a lockout says nothing about who exists.

Counts live in Redis when REDIS_URL is set (shared by every replica), else in this process.
When Redis stops answering, the process falls back to its own counts and says so in the log.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import redis

log = logging.getLogger(__name__)

WINDOW_SECONDS = 3600  # failures older than this (with none since) are forgotten
MAX_LOCK_SECONDS = 3600
ADDRESS_FACTOR = 4
_MAX_KEYS = 100_000


@dataclass(frozen=True)
class Key:
    name: str  # "user:<digest>" or "addr:<address>"
    limit: int
    reset_on_success: bool


def keys_for(username: str, address: str, max_failures: int) -> list[Key]:
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [
        Key(f"user:{digest}", max_failures, reset_on_success=True),
        Key(f"addr:{address}", max_failures * ADDRESS_FACTOR, reset_on_success=False),
    ]


def lock_seconds(count: int, limit: int, base: float) -> float:
    return min(base * 2 ** max(count - limit, 0), MAX_LOCK_SECONDS)


class Counts(Protocol):
    def attempt(self, key: Key, base: float) -> float:
        """Count an attempt: 0 to go on, or the seconds to wait (nothing counted then)."""

    def release(self, key: Key) -> None:
        """Take one attempt back (and its lock, when the count is below the limit again)."""

    def reset(self, key: Key) -> None: ...


class LocalCounts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float, float]] = {}  # name -> (count, forget_at, locked_until)

    def attempt(self, key: Key, base: float) -> float:
        now = time.monotonic()
        with self._lock:
            count, forget_at, locked_until = self._counts.get(key.name, (0, 0.0, 0.0))
            if forget_at <= now:
                count, locked_until = 0, 0.0
            if locked_until > now:
                return locked_until - now
            count += 1
            if count >= key.limit:  # the last attempt allowed: lock before it runs, not after it fails
                locked_until = now + lock_seconds(count, key.limit, base)
            if len(self._counts) >= _MAX_KEYS:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            self._counts[key.name] = (count, now + max(WINDOW_SECONDS, locked_until - now), locked_until)
            return 0.0

    def release(self, key: Key) -> None:
        with self._lock:
            count, forget_at, locked_until = self._counts.get(key.name, (0, 0.0, 0.0))
            count -= 1
            if count <= 0:
                self._counts.pop(key.name, None)
            else:
                self._counts[key.name] = (count, forget_at, locked_until if count >= key.limit else 0.0)

    def reset(self, key: Key) -> None:
        with self._lock:
            self._counts.pop(key.name, None)


class RedisCounts:
    """The same counts in Redis: `<prefix>:login:<key>` (the count) and `...:lock` (its TTL is the wait)."""

    def __init__(self, url: str, prefix: str) -> None:
        self._client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
        self._prefix = f"{prefix}:login:"

    def attempt(self, key: Key, base: float) -> float:
        name = self._prefix + key.name
        wait_ms = int(self._client.pttl(name + ":lock"))
        if wait_ms > 0:
            return wait_ms / 1000
        pipe = self._client.pipeline()
        pipe.incr(name)
        pipe.expire(name, WINDOW_SECONDS)
        count = int(pipe.execute()[0])
        if count >= key.limit:
            seconds = lock_seconds(count, key.limit, base)
            pipe.expire(name, max(WINDOW_SECONDS, math.ceil(seconds)))
            pipe.set(name + ":lock", 1, px=max(int(seconds * 1000), 1), nx=True)
            if not pipe.execute()[1]:  # another attempt in flight took the last slot
                self._client.decr(name)
                return max(int(self._client.pttl(name + ":lock")), 1) / 1000
        return 0.0

    def release(self, key: Key) -> None:
        name = self._prefix + key.name
        count = int(self._client.decr(name))
        if count <= 0:
            self._client.delete(name, name + ":lock")
        elif count < key.limit:
            self._client.delete(name + ":lock")

    def reset(self, key: Key) -> None:
        name = self._prefix + key.name
        self._client.delete(name, name + ":lock")


class LoginLimiter:
    """Redis counts when configured (falling back to local ones while Redis fails), else local."""

    def __init__(self, redis_url: str | None, prefix: str, max_failures: int, lockout_seconds: float) -> None:
        self._local = LocalCounts()
        self._redis = RedisCounts(redis_url, prefix) if redis_url else None
        self.max_failures = max_failures
        self.base = lockout_seconds

    def _counts(self, method: str, *args: object) -> Any:  # what the Redis or local counter answers
        if self._redis is not None:
            try:
                return getattr(self._redis, method)(*args)
            except (redis.RedisError, OSError) as exc:
                log.warning("sign-in limits: Redis failed (%s); counting in this process", type(exc).__name__)
        return getattr(self._local, method)(*args)

    def attempt(self, username: str, address: str) -> float:
        """Count a sign-in attempt: 0 to go on and check the password, or the seconds to wait."""
        taken: list[Key] = []
        for key in keys_for(username, address, self.max_failures):
            wait = float(self._counts("attempt", key, self.base))
            if wait > 0:
                for done in taken:  # this attempt does not happen: give back what it took
                    self._counts("release", done)
                return wait
            taken.append(key)
        return 0.0

    def succeeded(self, username: str, address: str) -> None:
        """The username starts afresh; the address gets this attempt back."""
        for key in keys_for(username, address, self.max_failures):
            self._counts("reset" if key.reset_on_success else "release", key)
