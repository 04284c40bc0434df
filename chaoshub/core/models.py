"""Column helpers every service's models share (each service still has its own metadata)."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    """A new random id, as text so every database stores it alike."""
    return str(uuid.uuid4())


def new_ordered_id() -> str:
    """A new id that sorts by when it was made (a UUIDv7, RFC 9562), for rows written all the
    time: each one goes next to the last in its indexes, rather than onto a random page."""
    value = (time.time_ns() // 1_000_000 & (1 << 48) - 1) << 80 | int.from_bytes(os.urandom(10))
    value = value & ~(0xF << 76) | 0x7 << 76  # the version: 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # the variant: RFC 9562's
    return str(uuid.UUID(int=value))


def lookup_key(name: str | None) -> str:
    """A name as looked up (any case): lower-cased, stripped of nothing else. A name holding a
    NUL, which no name has and PostgreSQL refuses even in a query, becomes "": it finds nothing."""
    key = (name or "").lower()
    return "" if "\x00" in key else key


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
