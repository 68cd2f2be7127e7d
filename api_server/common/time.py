"""Time in one form: now in UTC, database values as aware UTC, ISO 8601 text.

Self-contained (standard library only): the operator imports it too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    # SQLite returns naive datetimes; every value we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@overload
def iso(value: datetime, *, z: bool = False) -> str: ...
@overload
def iso(value: None, *, z: bool = False) -> None: ...
def iso(value: datetime | None, *, z: bool = False) -> str | None:
    """ISO 8601 in UTC (naive values are UTC); with `z`, "Z" for "+00:00" (Kubernetes' and Label
    Studio's export form)."""
    value = as_utc(value)
    if value is None:
        return None
    text = value.isoformat()
    return text.replace("+00:00", "Z") if z else text
