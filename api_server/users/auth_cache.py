"""A short-lived per-process cache of authenticated users, keyed by token digest.

Every API call authenticates; caching the answer for a few seconds saves a query (and its
round trip) per request. Any change to users or tokens flushed by this process empties the
cache at once; changes made by other processes (another replica, the CLI) take effect
within `KUBELABEL_AUTH_CACHE_SECONDS` (0 turns the cache off).
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import event
from sqlalchemy.orm import Session

from api_server.db.models import ApiToken, User

_MAX_ENTRIES = 10_000


class AuthCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, User]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, ttl: float) -> User | None:
        if ttl <= 0:
            return None
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: str, user: User, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + ttl, user)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


AUTH_CACHE = AuthCache()


@event.listens_for(Session, "after_flush")
def _forget_on_user_changes(session: Session, _context: object) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, User | ApiToken):
            AUTH_CACHE.clear()
            return
