"""Usage and cost per user over a range, in one SQL statement.

cost = GPU-hours x GPU rate (per model where set) + CPU-core-hours x CPU rate + GiB-hours x memory rate,
each at the price in force when the usage happened. The range is split into whole local days, read
from the daily rollups of closed sessions, and the partial days at its edges, read from the sessions
themselves; open sessions are added live, billed to ``now``. Every part is split by the periods of
constant prices (rates change at local day starts, so a rollup day lies in one period), and priced by
its period. All parts run in one UNION ALL statement, so they share one consistent snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from portal.billing.periods import month_bounds, whole_days
from portal.billing.rates import DEFAULT_MODEL, PricePeriod, RateDefaults, price_timeline
from portal.models import PodSession, UsageDaily
from portal.rollups import GIB, day_start, rollup_zone
from portal.sqltypes import UTCDateTime, greatest, least, seconds_between

_S = PodSession.__table__
_D = UsageDaily.__table__


GROUPS = ("user", "gpu_model", "namespace")  # what a report may be grouped by
_GROUP_COLUMN = {"user": "user_name", "gpu_model": "gpu_model", "namespace": "namespace"}


@dataclass(frozen=True)
class UsageRow:
    user_name: str  # the group's key: a user name, or a GPU model or namespace when grouped by those
    runtime_hours: float
    gpu_hours: float
    cpu_core_hours: float
    memory_gib_hours: float
    gpu_cost: float
    cpu_cost: float
    memory_cost: float

    @property
    def key(self) -> str:
        return self.user_name

    @property
    def total_cost(self) -> float:
        return self.gpu_cost + self.cpu_cost + self.memory_cost


def _t(value: datetime) -> sa.BindParameter:
    return sa.literal(value, UTCDateTime())


def _rows(name: str, rows: list[dict], types: dict[str, sa.types.TypeEngine], dialect: str) -> sa.Subquery:
    """A small constant table, as a UNION ALL of one-row SELECTs (portable to PostgreSQL and SQLite).

    PostgreSQL gets explicit casts, so that every row has the same column types; SQLite must not (a CAST to
    DATETIME there turns the stored text into a number)."""
    def value(v, type_):
        bound = sa.literal(v, type_)
        return sa.cast(bound, type_) if dialect == "postgresql" else bound

    selects = [sa.select(*(value(row[column], type_).label(column) for column, type_ in types.items()))
               for row in rows]
    return (sa.union_all(*selects) if len(selects) > 1 else selects[0]).subquery(name)


def _periods(periods: list[PricePeriod], dialect: str) -> sa.Subquery:
    rows = [{"period": i, "p_start": p.start, "p_end": p.end} for i, p in enumerate(periods)]
    return _rows("periods", rows, {"period": sa.Integer(), "p_start": UTCDateTime(), "p_end": UTCDateTime()},
                 dialect)


def _prices(periods: list[PricePeriod], dialect: str) -> sa.Subquery:
    rows = [{"period": i, "gpu_model": model, "gpu_hour": price.gpu_hour, "cpu_core_hour": price.cpu_core_hour,
             "memory_gib_hour": price.memory_gib_hour}
            for i, p in enumerate(periods) for model, price in sorted(p.prices.items())]
    return _rows("prices", rows, {"period": sa.Integer(), "gpu_model": sa.String(), "gpu_hour": sa.Float(),
                                  "cpu_core_hour": sa.Float(), "memory_gib_hour": sa.Float()}, dialect)


def _sessions_part(lo: datetime, hi: datetime, periods: sa.Subquery, *, open_sessions: bool,
                   user: str | None, group: str = "user_name") -> sa.Select:
    """Per (user, model, price period) usage of sessions inside [lo, hi): closed ones, or open ones billed
    to hi."""
    p = periods.c
    end = least(_t(hi), p.p_end) if open_sessions else least(_S.c.ended_at, _t(hi), p.p_end)
    seconds = seconds_between(greatest(_S.c.started_at, _t(lo), p.p_start), end)
    where = [_S.c.started_at < _t(hi), _S.c.started_at < p.p_end, p.p_start < _t(hi), p.p_end > _t(lo)]
    where += [_S.c.ended_at.is_(None)] if open_sessions else [_S.c.ended_at > _t(lo), _S.c.ended_at > p.p_start]
    if user is not None:
        where.append(_S.c.user_name == user)
    return (
        sa.select(
            _S.c[group].label("group_key"), _S.c.gpu_model, p.period,
            sa.func.sum(seconds).label("runtime"),
            sa.func.sum(seconds * _S.c.gpu_count).label("gpu"),
            sa.func.sum(seconds * _S.c.cpu_request).label("cpu"),
            sa.func.sum(seconds * _S.c.memory_request_bytes / float(GIB)).label("mem"),
        )
        .select_from(_S.join(periods, sa.true()))
        .where(*where)
        .group_by(_S.c[group], _S.c.gpu_model, p.period)
    )


def _rollup_part(first_day, last_day, timeline: list[PricePeriod], *, user: str | None,
                 group: str = "user_name") -> sa.Select:
    """Per (user, model, price period) usage of the whole days [first_day, last_day). A day lies in one
    period (prices change at day starts); the period is a CASE on the day rather than a join, so that the
    query stays one index range scan."""
    period = sa.case(*((_D.c.day < p.last_day, i) for i, p in enumerate(timeline[:-1])),
                     else_=len(timeline) - 1) if len(timeline) > 1 else sa.literal(0)
    period = period.label("period")
    where = [_D.c.day >= first_day, _D.c.day < last_day]
    if user is not None:
        where.append(_D.c.user_name == user)
    return (
        sa.select(
            _D.c[group].label("group_key"), _D.c.gpu_model, period,
            sa.func.sum(_D.c.runtime_seconds).label("runtime"),
            sa.func.sum(_D.c.gpu_seconds).label("gpu"),
            sa.func.sum(_D.c.cpu_core_seconds).label("cpu"),
            sa.func.sum(_D.c.memory_gib_seconds).label("mem"),
        )
        .where(*where)
        .group_by(_D.c[group], _D.c.gpu_model, period)
    )


def _parts(start: datetime, end: datetime, now: datetime, zone: ZoneInfo, use_rollups: bool,
           timeline: list[PricePeriod], periods: sa.Subquery, user: str | None, group: str) -> list[sa.Select]:
    parts = []
    if now > start:
        parts.append(_sessions_part(start, min(end, now), periods, open_sessions=True, user=user, group=group))
    days = whole_days(start, end, zone) if use_rollups else None
    if days is None:
        return parts + [_sessions_part(start, end, periods, open_sessions=False, user=user, group=group)]
    first, last = days
    parts.append(_rollup_part(first, last, timeline, user=user, group=group))
    for lo, hi in ((start, day_start(first, zone)), (day_start(last, zone), end)):
        if hi > lo:
            parts.append(_sessions_part(lo, hi, periods, open_sessions=False, user=user, group=group))
    return parts


def usage_report(
    connection: sa.Connection, *, start: datetime, end: datetime, zone: ZoneInfo, now: datetime,
    defaults: RateDefaults | None = None, user: str | None = None, group_by: str = "user",
) -> list[UsageRow]:
    """Usage and cost per user (or per GPU model or namespace: ``group_by``) of everything that ran inside
    [start, end), sorted by that key. The daily rollups hold no namespace: by namespace reads sessions."""
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {GROUPS}")
    group = _GROUP_COLUMN[group_by]
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("report bounds must be timezone-aware")
    if end <= start:
        raise ValueError("the report range must end after it starts")
    timeline = price_timeline(connection, start=start, end=end, zone=zone, defaults=defaults or RateDefaults())
    dialect = connection.dialect.name
    periods, prices = _periods(timeline, dialect), _prices(timeline, dialect)
    use_rollups = rollup_zone(connection) == zone.key and group in _D.c
    parts = _parts(start, end, now, zone, use_rollups, timeline, periods, user, group)
    usage = sa.union_all(*parts).subquery("usage") if len(parts) > 1 else parts[0].subquery("usage")
    model_price = prices.alias("model_price")
    base_price = prices.alias("base_price")

    def price(name: str):
        return sa.func.coalesce(model_price.c[name], base_price.c[name])

    hours = {k: usage.c[k] / 3600.0 for k in ("runtime", "gpu", "cpu", "mem")}
    query = (
        sa.select(
            usage.c.group_key,
            sa.func.sum(hours["runtime"]), sa.func.sum(hours["gpu"]),
            sa.func.sum(hours["cpu"]), sa.func.sum(hours["mem"]),
            sa.func.sum(hours["gpu"] * price("gpu_hour")),
            sa.func.sum(hours["cpu"] * price("cpu_core_hour")),
            sa.func.sum(hours["mem"] * price("memory_gib_hour")),
        )
        .select_from(
            usage.outerjoin(model_price, sa.and_(model_price.c.period == usage.c.period,
                                                 model_price.c.gpu_model == usage.c.gpu_model,
                                                 usage.c.gpu_model != DEFAULT_MODEL))
            .join(base_price, sa.and_(base_price.c.period == usage.c.period,
                                      base_price.c.gpu_model == DEFAULT_MODEL))
        )
        .group_by(usage.c.group_key)
        .order_by(usage.c.group_key)
    )
    return [UsageRow(row[0], *(float(v or 0.0) for v in row[1:])) for row in connection.execute(query)]


def monthly_report(
    connection: sa.Connection, *, year: int, month: int, zone: ZoneInfo, now: datetime,
    defaults: RateDefaults | None = None, user: str | None = None, group_by: str = "user",
) -> list[UsageRow]:
    """usage_report over one calendar month in ``zone``."""
    start, end = month_bounds(year, month, zone)
    return usage_report(connection, start=start, end=end, zone=zone, now=now, defaults=defaults, user=user,
                        group_by=group_by)
