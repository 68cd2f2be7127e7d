"""Timestamps in API output: ISO 8601 in UTC, whatever the database hands back."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    # SQLite returns naive datetimes; every value we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
