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
from types import TracebackType


class FairLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next = 0  # the next ticket to hand out
        self._serving = 0  # the ticket whose holder may enter
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                self._cond.wait()
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a lock this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._serving += 1
                self._cond.notify_all()

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


SQLITE_WRITER = FairLock()
