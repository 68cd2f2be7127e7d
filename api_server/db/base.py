"""Declarative base with a naming convention (stable constraint names for migrations)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import JSON, DateTime, MetaData, Table, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

from api_server.common.time import as_utc, utcnow

__all__ = ["JSONDoc", "JSONText", "NAMING", "Base", "UTCDateTime", "utcnow"]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON documents: jsonb on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")
# JSON kept as written (json, not jsonb, on PostgreSQL): webhook payloads, which a claim reads as the
# stored text and sends; turning jsonb back into text cost more than the rest of the claim.
JSONText = JSON()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware (UTC), also from SQLite, which drops the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    if TYPE_CHECKING:
        # Every model maps one Table (none a join or a select), so Core's insert/update/delete take it.
        __table__: ClassVar[Table]
