"""Background execution of storage syncs, never inside the HTTP request.

A sync runs in a daemon thread of the API process. One sync per storage at a time in a
process: a second request while one runs is answered with the running sync's state. A sync
is idempotent and resumable, so a process that dies mid-sync loses nothing: the storage
shows `in_progress`/`queued` until the next sync request runs it again to completion.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

_running: set[tuple[str, int]] = set()
_lock = threading.Lock()


def is_running(direction: str, storage_id: int) -> bool:
    with _lock:
        return (direction, storage_id) in _running


def start(direction: str, storage_id: int, work: Callable[[], None]) -> bool:
    """Run `work` in a thread unless this storage already syncs here; True when started."""
    ident = (direction, storage_id)
    with _lock:
        if ident in _running:
            return False
        _running.add(ident)

    def run() -> None:
        try:
            work()
        except Exception:
            log.exception("%s storage %s: sync crashed", direction, storage_id)
        finally:
            with _lock:
                _running.discard(ident)

    threading.Thread(target=run, name=f"sync-{direction}-{storage_id}", daemon=True).start()
    return True


def wait_idle(timeout: float = 30.0) -> bool:
    """For shutdown and tests: wait until no sync runs; False on timeout."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _lock:
            if not _running:
                return True
        time.sleep(0.05)
    return False
