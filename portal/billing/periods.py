"""Calendar periods in the configured time zone, as UTC instants."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from portal.rollups import day_start


def month_bounds(year: int, month: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a calendar month in ``zone``."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, not {month}")
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return day_start(first, zone), day_start(following, zone)


def month_of(moment: datetime, zone: ZoneInfo) -> tuple[int, int]:
    local = moment.astimezone(zone)
    return local.year, local.month


def whole_days(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[date, date] | None:
    """[first, last) local days that lie entirely inside [start, end); None if there are none."""
    first = start.astimezone(zone).date()
    if day_start(first, zone) < start:
        first += timedelta(days=1)
    last = end.astimezone(zone).date()  # the day containing ``end`` is not whole (or begins at end)
    return (first, last) if first < last else None
