"""Usage and cost per user over a range, in one SQL statement.

cost = GPU-hours x GPU rate (per model where set) + CPU-core-hours x CPU rate + GiB-hours x memory rate.
The range is split into whole local days, read from the daily rollups of closed sessions, and the
partial days at its edges, read from the sessions themselves; open sessions are added live, billed to
``now``. All parts run in one UNION ALL statement, so they share one consistent snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from portal.billing.periods import month_bounds, whole_days
from portal.billing.rates import DEFAULT_MODEL, RateDefaults
from portal.models import PodSession, Rate, UsageDaily
from portal.rollups import GIB, day_start, rollup_zone
from portal.sqltypes import UTCDateTime, greatest, least, seconds_between

_S = PodSession.__table__
_D = UsageDaily.__table__
_R = Rate.__table__


@dataclass(frozen=True)
class UsageRow:
    user_name: str
    runtime_hours: float
    gpu_hours: float
    cpu_core_hours: float
    memory_gib_hours: float
    gpu_cost: float
    cpu_cost: float
    memory_cost: float

    @property
    def total_cost(self) -> float:
        return self.gpu_cost + self.cpu_cost + self.memory_cost


def _t(value: datetime) -> sa.BindParameter:
    return sa.literal(value, UTCDateTime())


def _sessions_part(lo: datetime, hi: datetime, *, open_sessions: bool, user: str | None) -> sa.Select:
    """Per (user, model) usage of sessions inside [lo, hi): closed ones, or open ones billed to hi."""
    end = _t(hi) if open_sessions else least(_S.c.ended_at, _t(hi))
    seconds = seconds_between(greatest(_S.c.started_at, _t(lo)), end)
    where = [_S.c.started_at < _t(hi)]
    where += [_S.c.ended_at.is_(None)] if open_sessions else [_S.c.ended_at > _t(lo)]
    if user is not None:
        where.append(_S.c.user_name == user)
    return (
        sa.select(
            _S.c.user_name, _S.c.gpu_model,
            sa.func.sum(seconds).label("runtime"),
            sa.func.sum(seconds * _S.c.gpu_count).label("gpu"),
            sa.func.sum(seconds * _S.c.cpu_request).label("cpu"),
            sa.func.sum(seconds * _S.c.memory_request_bytes / float(GIB)).label("mem"),
        )
        .where(*where)
        .group_by(_S.c.user_name, _S.c.gpu_model)
    )


def _rollup_part(first_day, last_day, *, user: str | None) -> sa.Select:
    where = [_D.c.day >= first_day, _D.c.day < last_day]
    if user is not None:
        where.append(_D.c.user_name == user)
    return (
        sa.select(
            _D.c.user_name, _D.c.gpu_model,
            sa.func.sum(_D.c.runtime_seconds).label("runtime"),
            sa.func.sum(_D.c.gpu_seconds).label("gpu"),
            sa.func.sum(_D.c.cpu_core_seconds).label("cpu"),
            sa.func.sum(_D.c.memory_gib_seconds).label("mem"),
        )
        .where(*where)
        .group_by(_D.c.user_name, _D.c.gpu_model)
    )


def _parts(start: datetime, end: datetime, now: datetime, zone: ZoneInfo, use_rollups: bool,
           user: str | None) -> list[sa.Select]:
    parts = []
    if now > start:
        parts.append(_sessions_part(start, min(end, now), open_sessions=True, user=user))
    days = whole_days(start, end, zone) if use_rollups else None
    if days is None:
        return parts + [_sessions_part(start, end, open_sessions=False, user=user)]
    first, last = days
    parts.append(_rollup_part(first, last, user=user))
    for lo, hi in ((start, day_start(first, zone)), (day_start(last, zone), end)):
        if hi > lo:
            parts.append(_sessions_part(lo, hi, open_sessions=False, user=user))
    return parts


def usage_report(
    connection: sa.Connection, *, start: datetime, end: datetime, zone: ZoneInfo, now: datetime,
    defaults: RateDefaults | None = None, user: str | None = None,
) -> list[UsageRow]:
    """Usage and cost per user of everything that ran inside [start, end), sorted by user."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("report bounds must be timezone-aware")
    if end <= start:
        raise ValueError("the report range must end after it starts")
    defaults = defaults or RateDefaults()
    use_rollups = rollup_zone(connection) == zone.key
    parts = _parts(start, end, now, zone, use_rollups, user)
    usage = sa.union_all(*parts).subquery("usage") if len(parts) > 1 else parts[0].subquery("usage")
    model_rate = _R.alias("model_rate")
    base_rate = _R.alias("base_rate")

    def price(name: str):
        return sa.func.coalesce(model_rate.c[name], base_rate.c[name], getattr(defaults, name))

    hours = {k: usage.c[k] / 3600.0 for k in ("runtime", "gpu", "cpu", "mem")}
    query = (
        sa.select(
            usage.c.user_name,
            sa.func.sum(hours["runtime"]), sa.func.sum(hours["gpu"]),
            sa.func.sum(hours["cpu"]), sa.func.sum(hours["mem"]),
            sa.func.sum(hours["gpu"] * price("gpu_hour")),
            sa.func.sum(hours["cpu"] * price("cpu_core_hour")),
            sa.func.sum(hours["mem"] * price("memory_gib_hour")),
        )
        .select_from(
            usage.outerjoin(model_rate, sa.and_(model_rate.c.gpu_model == usage.c.gpu_model,
                                                usage.c.gpu_model != DEFAULT_MODEL))
            .outerjoin(base_rate, base_rate.c.gpu_model == DEFAULT_MODEL)
        )
        .group_by(usage.c.user_name)
        .order_by(usage.c.user_name)
    )
    return [UsageRow(row[0], *(float(v or 0.0) for v in row[1:])) for row in connection.execute(query)]


def monthly_report(
    connection: sa.Connection, *, year: int, month: int, zone: ZoneInfo, now: datetime,
    defaults: RateDefaults | None = None, user: str | None = None,
) -> list[UsageRow]:
    """usage_report over one calendar month in ``zone``."""
    start, end = month_bounds(year, month, zone)
    return usage_report(connection, start=start, end=end, zone=zone, now=now, defaults=defaults, user=user)
