"""Object key filters: a glob and/or a regular expression, both optional.

The regex follows Label Studio's `regex_filter`: `re.match` against the whole key (so it is
anchored at the start; add `.*` for "contains"). The glob uses fnmatch rules where `*`
also crosses `/`, so `*.jpg` matches `a/b/c.jpg`; it is tried against the whole key and
against the key relative to the storage prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from api_server.storages.providers.base import StorageError


@dataclass(frozen=True)
class KeyFilter:
    glob: str | None = None
    regex: str | None = None
    prefix: str = ""
    _compiled: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.regex:
            try:
                object.__setattr__(self, "_compiled", re.compile(self.regex))
            except re.error as exc:
                raise StorageError(f"invalid regex filter {self.regex!r}: {exc}") from None

    def matches(self, key: str) -> bool:
        if self._compiled is not None and not self._compiled.match(key):
            return False
        if self.glob:
            relative = key[len(self.prefix) :].lstrip("/") if self.prefix and key.startswith(self.prefix) else key
            if not (fnmatchcase(key, self.glob) or fnmatchcase(relative, self.glob)):
                return False
        return True
