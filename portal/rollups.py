"""Daily per-user usage rollups of closed sessions, in the configured time zone.

The collector adds a session's days in the same transaction that closes it, so a report over whole
days reads a few thousand rollup rows instead of a million sessions. Open sessions are never rolled
up; reports add them live. The rollup zone is recorded; a different zone means a rebuild.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from portal.models import PodSession, PortalMeta, UsageDaily
from portal.sqltypes import rows_source, upsert

GIB = 1024**3
ROLLUP_ZONE_KEY = "rollup_timezone"
_SUMS = ("runtime_seconds", "gpu_seconds", "cpu_core_seconds", "memory_gib_seconds")


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a calendar day begins in ``zone`` (days are not always 24 h apart: DST).

    In UTC, because Python subtracts two datetimes of the same zone by wall clock, not by elapsed time.
    """
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def split_by_day(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[date, float]]:
    """Seconds of [start, end) falling on each local calendar day."""
    pieces = []
    day = start.astimezone(zone).date()
    while True:
        next_start = day_start(day + timedelta(days=1), zone)
        piece_end = min(end, next_start)
        lo = max(start, day_start(day, zone))
        if piece_end > lo:
            pieces.append((day, (piece_end - lo).total_seconds()))
        if end <= next_start:
            return pieces
        day += timedelta(days=1)


def rollup_rows(sessions: Iterable[Mapping], zone: ZoneInfo) -> list[dict]:
    """Per (day, user, GPU model) sums for closed sessions given as row mappings; sorted keys."""
    sums: dict[tuple, list[float]] = {}
    for s in sessions:
        if s["ended_at"] is None:
            continue
        gib = s["memory_request_bytes"] / GIB
        for day, seconds in split_by_day(s["started_at"], s["ended_at"], zone):
            acc = sums.setdefault((day, s["user_name"], s["gpu_model"]), [0.0, 0.0, 0.0, 0.0])
            acc[0] += seconds
            acc[1] += seconds * s["gpu_count"]
            acc[2] += seconds * s["cpu_request"]
            acc[3] += seconds * gib
    return [
        {"day": d, "user_name": u, "gpu_model": m, **dict(zip(_SUMS, acc, strict=True))}
        for (d, u, m), acc in sorted(sums.items())
    ]


def add_rollups(connection: sa.Connection, rows: list[dict]) -> None:
    """Add ``rows`` to usage_daily in one set-based upsert (totals accumulate)."""
    if not rows:
        return
    table = UsageDaily.__table__
    columns = ["day", "user_name", "gpu_model", *_SUMS]
    source = rows_source(connection, table, rows, columns)
    stmt = upsert(connection, table)
    if source is not None:
        stmt = stmt.from_select(columns, source)
    stmt = stmt.on_conflict_do_update(
        index_elements=["day", "user_name", "gpu_model"],
        set_={name: table.c[name] + stmt.excluded[name] for name in _SUMS},
    )
    connection.execute(stmt, None if source is not None else rows)


def rollup_zone(connection: sa.Connection) -> str | None:
    return connection.execute(
        sa.select(PortalMeta.value).where(PortalMeta.key == ROLLUP_ZONE_KEY)
    ).scalar_one_or_none()


def rebuild_rollups(connection: sa.Connection, zone: ZoneInfo, *, batch: int = 20_000) -> None:
    """Recompute usage_daily from every closed session, in ``zone``, and record the zone."""
    connection.execute(sa.delete(UsageDaily))
    sessions = PodSession.__table__
    columns = [sessions.c[n] for n in (
        "user_name", "gpu_model", "started_at", "ended_at", "gpu_count", "cpu_request", "memory_request_bytes")]
    result = connection.execute(
        sa.select(*columns).where(sessions.c.ended_at.is_not(None)).execution_options(yield_per=batch)
    )
    for chunk in result.mappings().partitions(batch):
        add_rollups(connection, rollup_rows(chunk, zone))
    meta = upsert(connection, PortalMeta.__table__).values(key=ROLLUP_ZONE_KEY, value=zone.key)
    connection.execute(meta.on_conflict_do_update(index_elements=["key"], set_={"value": zone.key}))


def ensure_rollups(connection: sa.Connection, zone: ZoneInfo) -> bool:
    """Rebuild the rollups when they were made for another zone (or never); True if it rebuilt."""
    if rollup_zone(connection) == zone.key:
        return False
    rebuild_rollups(connection, zone)
    return True
