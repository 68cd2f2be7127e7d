"""One SQLite writer at a time per process, served in arrival order.

SQLite has one write lock per database. Threads that meet it held wait in SQLite's busy handler,
which sleeps and polls (up to 100 ms a time), so under load a writer can wait far longer than
the writes ahead of it took. The process's writers (the labeling workflow, the event fan-out and
the delivery engine) take this lock first and queue here instead. It is first come, first served
(a plain lock lets the busy request threads take it again and again while the event thread
starves). Re-entrant. Writers of other processes still meet the busy handler.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType


class FairLock:
    """Re-entrant, first come first served: each waiter sleeps on a gate of its own, and a release
    hands the lock to the oldest waiter alone (a condition's notify_all woke all 16 request threads
    on every release to find the one whose turn it was: 5% of the server's interpreter time on
    SQLite under load)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()  # guards the fields below, held only briefly
        self._owner: int | None = None
        self._depth = 0
        self._waiters: deque[tuple[int, threading.Lock]] = deque()

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._guard:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None:
                self._owner, self._depth = me, 1
                return
            gate = threading.Lock()
            gate.acquire()
            self._waiters.append((me, gate))
        gate.acquire()  # released by the holder that made this thread the owner

    def release(self) -> None:
        with self._guard:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a lock this thread does not hold")
            self._depth -= 1
            if self._depth:
                return
            if not self._waiters:
                self._owner = None
                return
            self._owner, gate = self._waiters.popleft()
            self._depth = 1
        gate.release()

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


SQLITE_WRITER = FairLock()
