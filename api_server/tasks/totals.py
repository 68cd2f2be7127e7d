"""The totals of a task list being walked: counted on its first page, reused by the pages after it.

A list's `total` (with its annotation and prediction sums) is an aggregate over the whole
filtered set: in a project of a million tasks it costs a scan, where a page costs an index walk
of 50 rows. Clients walk a list page after page (the SDK until an empty page), so the first page
(page 1, no `after`) always counts, and later pages of the same list (same caller, projects,
filters, newest task) reuse that count for `TTL` seconds: a walk costs one count, and its
`total` is the one the walk started with, as a paginator shows it (tasks imported meanwhile make
it count again; annotations that move tasks in or out of a filter do not).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

TTL = 300.0
SIZE = 1024

Totals = tuple[int, int, int]


class TotalsCache:
    def __init__(self, ttl: float = TTL, size: int = SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._items: OrderedDict[Hashable, tuple[float, Totals]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, count: Callable[[], Totals], *, fresh: bool) -> Totals:
        """The cached totals of `key` unless `fresh` or expired; else `count()`, remembered."""
        now = time.monotonic()
        if not fresh:
            with self._lock:
                hit = self._items.get(key)
                if hit is not None and now - hit[0] < self.ttl:
                    self._items.move_to_end(key)
                    return hit[1]
        totals = count()
        with self._lock:
            self._items[key] = (now, totals)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return totals


CACHE = TotalsCache()
