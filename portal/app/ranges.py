"""Report ranges from query parameters, and times shown in the configured zone.

``month=YYYY-MM``, or ``start``/``end`` as dates (local midnight) or ISO datetimes (naive ones are
local), end exclusive; nothing means the current month. A bad combination is a 422 naming the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from portal.app.services.errors import Invalid
from portal.billing.periods import month_bounds, month_of

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
MIN_YEAR, MAX_YEAR = 2000, 2999  # a report outside this is a typo, and datetime arithmetic stays safe
MAX_RANGE = timedelta(days=3700)


@dataclass(frozen=True)
class Range:
    start: datetime  # aware UTC
    end: datetime  # aware UTC, exclusive
    label: str  # e.g. "2026-05" or "2026-05-01 .. 2026-05-15"


def _bad(message: str) -> Invalid:
    return Invalid(message, loc=("query",))


def parse_month(value: str, zone: ZoneInfo) -> Range:
    match = _MONTH.match(value)
    if not match or not 1 <= int(match.group(2)) <= 12 or not MIN_YEAR <= int(match.group(1)) <= MAX_YEAR:
        raise _bad(f"month: {value!r} is not a month between {MIN_YEAR}-01 and {MAX_YEAR}-12 (use YYYY-MM)")
    start, end = month_bounds(int(match.group(1)), int(match.group(2)), zone)
    return Range(start, end, value)


def parse_instant(value: str, zone: ZoneInfo, name: str) -> datetime:
    """A date (local midnight) or an ISO 8601 datetime (naive = local) as aware UTC."""
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(0), tzinfo=zone)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except ValueError:
        raise _bad(f"{name}: {value!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise _bad(f"{name}: {value!r} is outside the years {MIN_YEAR}..{MAX_YEAR}")
    return moment.astimezone(ZoneInfo("UTC"))


def resolve_range(*, month: str | None, start: str | None, end: str | None, zone: ZoneInfo,
                  now: datetime) -> Range:
    if month is not None and (start is not None or end is not None):
        raise _bad("give either month, or start and end, not both")
    if month is not None:
        return parse_month(month, zone)
    if start is None and end is None:
        year, number = month_of(now, zone)
        return parse_month(f"{year:04d}-{number:02d}", zone)
    if start is None or end is None:
        raise _bad("start and end go together (end is exclusive)")
    lo, hi = parse_instant(start, zone, "start"), parse_instant(end, zone, "end")
    if hi <= lo:
        raise _bad("end must be after start")
    if hi - lo > MAX_RANGE:
        raise _bad("the range may span at most ten years")
    return Range(lo, hi, f"{start} .. {end}")


def local(moment: datetime | None, zone: ZoneInfo) -> str:
    """A stored UTC time as the configured zone shows it, e.g. 2026-05-01 10:00:00 CST."""
    if moment is None:
        return ""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days}d {hours}h {minutes}m" if days else f"{hours}h {minutes}m"
