"""Small facts about the database itself, in ``portal_meta``: one row per key.

Times are stored as ISO 8601 UTC text. Each writer owns its keys: the collector writes when it began
recording (``collector_since``) and its heartbeat (``collector_heartbeat``: every session still open was
alive at that moment); the rollups their time zone; the MySQL export its bootstrap.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from portal.models import PortalMeta
from portal.sqltypes import upsert

COLLECTOR_SINCE = "collector_since"
COLLECTOR_HEARTBEAT = "collector_heartbeat"
_M = PortalMeta.__table__


def read_value(connection: sa.Connection, key: str) -> str | None:
    return connection.execute(sa.select(_M.c.value).where(_M.c.key == key)).scalar_one_or_none()


def write_value(connection: sa.Connection, key: str, value: str, *, keep_existing: bool = False) -> None:
    """Set ``key`` (one statement); with ``keep_existing`` only when it has no value yet."""
    stmt = upsert(connection, _M).values(key=key, value=value)
    if keep_existing:
        stmt = stmt.on_conflict_do_nothing(index_elements=["key"])
    else:
        stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value})
    connection.execute(stmt)


def read_time(connection: sa.Connection, key: str) -> datetime | None:
    value = read_value(connection, key)
    return None if value is None else parse_time(value)


def write_time(connection: sa.Connection, key: str, moment: datetime, *, keep_existing: bool = False) -> None:
    write_value(connection, key, format_time(moment), keep_existing=keep_existing)


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: store aware UTC datetimes only")
    return moment.astimezone(UTC).isoformat()


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
