"""Usage over time, for the charts: per local day (GPU-hours and cost), per month, and GPUs allocated
per node.

Days come from the daily rollups of closed sessions (a few rows per day, never the sessions table) plus
the open sessions, split by local day up to now; each (day, GPU model) is priced at the prices in force
that day, as the bills are. So a month's days add up to that month's bill.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from portal.billing.rates import DEFAULT_MODEL, RateDefaults, RateRow, price_timeline
from portal.models import PodSession, UsageDaily
from portal.rollups import GIB, day_start, rollup_rows, rollup_zone, split_by_day

sessions = PodSession.__table__
usage_daily = UsageDaily.__table__
READ = object()  # ``daily(rollups=READ)``: read the rollups' zone


@dataclass(frozen=True)
class DayUsage:
    day: date
    gpu_hours: float
    cost: float


def _priced(timeline, day: date, model: str) -> RateDefaults:
    for period in timeline:
        if period.first_day <= day < period.last_day:
            return period.prices.get(model) or period.prices[DEFAULT_MODEL]
    return timeline[-1].prices.get(model) or timeline[-1].prices[DEFAULT_MODEL]


def _closed_by_day(connection: sa.Connection, first: date, last: date, zone: ZoneInfo, user: str | None,
                   rollups: str | None | object):
    """(day, model) -> [gpu, cpu, GiB] seconds of closed sessions, from the rollups when they are in ``zone``."""
    sums: dict[tuple[date, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    if (rollup_zone(connection) if rollups is READ else rollups) == zone.key:
        d = usage_daily.c
        query = (sa.select(d.day, d.gpu_model, sa.func.sum(d.gpu_seconds), sa.func.sum(d.cpu_core_seconds),
                           sa.func.sum(d.memory_gib_seconds))
                 .where(d.day >= first, d.day < last).group_by(d.day, d.gpu_model))
        if user is not None:
            query = query.where(d.user_name == user)
        for day, model, gpu, cpu, mem in connection.execute(query):
            sums[(day, model)] = [float(gpu or 0), float(cpu or 0), float(mem or 0)]
        return sums
    start, end = day_start(first, zone), day_start(last, zone)  # no rollups in this zone: read the sessions
    s = sessions.c
    query = sa.select(s.user_name, s.gpu_model, s.started_at, s.ended_at, s.gpu_count, s.cpu_request,
                      s.memory_request_bytes).where(s.ended_at.is_not(None), s.ended_at > start, s.started_at < end)
    if user is not None:
        query = query.where(s.user_name == user)
    for row in rollup_rows(connection.execute(query).mappings(), zone):
        if first <= row["day"] < last:
            acc = sums[(row["day"], row["gpu_model"])]
            acc[0] += row["gpu_seconds"]
            acc[1] += row["cpu_core_seconds"]
            acc[2] += row["memory_gib_seconds"]
    return sums


def daily(connection: sa.Connection, *, first: date, last: date, zone: ZoneInfo, now: datetime,
          defaults: RateDefaults, user: str | None = None, rates: list[RateRow] | None = None,
          rollups: str | None | object = READ) -> list[DayUsage]:
    """GPU-hours and cost of each local day in [first, last), every day listed (zeros included). ``rates``
    (the rates rows) and ``rollups`` (the rollups' zone) when the caller has them; else they are read."""
    start, end = day_start(first, zone), day_start(last, zone)
    sums = _closed_by_day(connection, first, last, zone, user, rollups)
    until = min(end, now)
    if until > start:
        s = sessions.c
        query = sa.select(s.gpu_model, s.started_at, s.gpu_count, s.cpu_request, s.memory_request_bytes).where(
            s.ended_at.is_(None), s.started_at < until)
        if user is not None:
            query = query.where(s.user_name == user)
        for model, started, gpus, cpu, memory in connection.execute(query):
            for day, seconds in split_by_day(max(started, start), until, zone):
                acc = sums[(day, model)]
                acc[0] += seconds * gpus
                acc[1] += seconds * cpu
                acc[2] += seconds * memory / GIB
    timeline = price_timeline(connection, start=start, end=end, zone=zone, defaults=defaults, rows=rates)
    hours: dict[date, float] = defaultdict(float)
    cost: dict[date, float] = defaultdict(float)
    for (day, model), (gpu, cpu, mem) in sums.items():
        price = _priced(timeline, day, model)
        hours[day] += gpu / 3600
        cost[day] += (gpu * price.gpu_hour + cpu * price.cpu_core_hour + mem * price.memory_gib_hour) / 3600
    days = []
    day = first
    while day < last:
        days.append(DayUsage(day, hours.get(day, 0.0), cost.get(day, 0.0)))
        day += timedelta(days=1)
    return days


def monthly(days: list[DayUsage]) -> list[tuple[str, float, float]]:
    """(YYYY-MM, GPU-hours, cost) per month of a day series, in order."""
    months: dict[str, list[float]] = {}
    for d in days:
        acc = months.setdefault(f"{d.day:%Y-%m}", [0.0, 0.0])
        acc[0] += d.gpu_hours
        acc[1] += d.cost
    return [(month, gpu, cost) for month, (gpu, cost) in months.items()]


def gpus_allocated(connection: sa.Connection, *, start: datetime, end: datetime, bucket_seconds: int
                   ) -> dict[str, list[float]]:
    """Per node, the average number of GPUs held by sessions in each bucket of [start, end)."""
    s = sessions.c
    columns = (s.node_name, s.started_at, s.ended_at, s.gpu_count)
    closed = sa.select(*columns).where(s.ended_at > start, s.started_at < end, s.gpu_count > 0)
    still_open = sa.select(*columns).where(s.ended_at.is_(None), s.started_at < end, s.gpu_count > 0)
    buckets = max(int((end - start).total_seconds() // bucket_seconds), 1)
    series: dict[str, list[float]] = {}
    for node, started, ended, gpus in connection.execute(sa.union_all(closed, still_open)):
        values = series.setdefault(node or "(no node)", [0.0] * buckets)
        lo = max(started, start)
        hi = min(ended or end, end)
        index = int((lo - start).total_seconds() // bucket_seconds)
        while index < buckets and lo < hi:
            bucket_end = start + timedelta(seconds=(index + 1) * bucket_seconds)
            piece = (min(hi, bucket_end) - lo).total_seconds()
            values[index] += gpus * piece / bucket_seconds
            lo = bucket_end
            index += 1
    return dict(sorted(series.items()))
