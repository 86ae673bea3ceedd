"""Per-user limits and what is left of the monthly GPU-hour budget (for the hub's pre-spawn hook).

Contract (served as GET /api/limits/{username}); null means unlimited:
  {"user": "alice", "limits": {"cpu": 16.0, "memoryGiB": 64.0, "gpus": 2, "gpuHoursMonthly": 100.0},
   "used": {"gpuHoursThisMonth": 12.5}, "remaining": {"gpuHours": 87.5}}
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from portal.billing.periods import month_of
from portal.billing.report import monthly_report
from portal.models import PodSession, User
from portal.settings import PortalSettings

_U = User.__table__


def user_limits(connection: sa.Connection, *, user_name: str, settings: PortalSettings,
                now: datetime) -> dict:
    """The user's limits (their row, or the configured defaults when they have none) and budget use."""
    row = connection.execute(sa.select(_U).where(_U.c.name == user_name)).first()
    year, month = month_of(now, settings.zone)
    usage = monthly_report(connection, year=year, month=month, zone=settings.zone, now=now, user=user_name)
    return _contract(user_name, row, settings, usage[0].gpu_hours if usage else 0.0)


def all_user_limits(connection: sa.Connection, *, settings: PortalSettings, now: datetime) -> list[dict]:
    """user_limits of every known user (limits of their own, or sessions), sorted by name: the same few
    statements however many users (their rows, their names, and one monthly report for all of them)."""
    rows = {row.name: row for row in connection.execute(sa.select(_U))}
    names = sa.union(sa.select(_U.c.name), sa.select(PodSession.__table__.c.user_name))
    known = sorted(name for (name,) in connection.execute(names))
    year, month = month_of(now, settings.zone)
    used = {r.user_name: r.gpu_hours
            for r in monthly_report(connection, year=year, month=month, zone=settings.zone, now=now)}
    return [_contract(name, rows.get(name), settings, used.get(name, 0.0)) for name in known]


def _contract(user_name: str, row, settings: PortalSettings, gpu_hours: float) -> dict:
    if row is None:
        cpu, memory, gpus, budget = (settings.default_cpu_limit, settings.default_memory_gib_limit,
                                     settings.default_gpu_limit, settings.default_gpu_hours_monthly)
    else:
        cpu, memory, gpus, budget = row.cpu_limit, row.memory_gib_limit, row.gpu_limit, row.gpu_hours_monthly
    used = round(gpu_hours, 4)
    return {
        "user": user_name,
        "limits": {
            "cpu": None if cpu is None else float(cpu),
            "memoryGiB": None if memory is None else float(memory),
            "gpus": None if gpus is None else int(gpus),
            "gpuHoursMonthly": None if budget is None else float(budget),
        },
        "used": {"gpuHoursThisMonth": used},
        "remaining": {"gpuHours": None if budget is None else round(max(float(budget) - used, 0.0), 4)},
    }
