"""The SQLite writer lock: one holder, re-entrant, handed to waiters in the order they came."""

from __future__ import annotations

import threading
import time

import pytest

from api_server.db.writer import FairLock


def _wait_for(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_reentrant_and_only_its_holder_releases():
    lock = FairLock()
    with lock, lock:
        errors: list[BaseException] = []

        def stranger() -> None:
            try:
                lock.release()
            except RuntimeError as exc:
                errors.append(exc)

        thread = threading.Thread(target=stranger, daemon=True)
        thread.start()
        thread.join()
        assert len(errors) == 1
    with pytest.raises(RuntimeError):
        lock.release()  # released as often as taken: held by nobody now


def test_waiters_get_the_lock_in_the_order_they_came():
    lock = FairLock()
    order: list[int] = []
    lock.acquire()

    def waiter(i: int) -> None:
        with lock:
            order.append(i)

    threads = []
    for i in range(6):
        thread = threading.Thread(target=waiter, args=(i,), daemon=True)
        thread.start()
        threads.append(thread)
        _wait_for(lambda n=i + 1: len(lock._waiters) == n)  # queued before the next one starts
    lock.release()
    for thread in threads:
        thread.join(5)
    assert order == list(range(6))


def test_one_holder_at_a_time_under_contention():
    lock = FairLock()
    state = {"inside": 0, "most": 0, "count": 0}

    def work() -> None:
        for _ in range(300):
            with lock:
                state["inside"] += 1
                state["most"] = max(state["most"], state["inside"])
                seen = state["count"]
                time.sleep(0)  # let another thread run while this one holds the lock
                state["count"] = seen + 1
                state["inside"] -= 1

    threads = [threading.Thread(target=work, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert state == {"inside": 0, "most": 1, "count": 2400}
