"""Per-user limits and what is left of the monthly GPU-hour budget (for the hub's pre-spawn hook).

Contract (served as GET /api/limits/{username}); null means unlimited:
  {"user": "alice", "default": false,
   "limits": {"cpu": 16.0, "memoryGiB": 64.0, "gpus": 2, "gpuHoursMonthly": 100.0, "budgetMonthly": 500.0},
   "used": {"gpuHoursThisMonth": 112.5, "costThisMonth": 450.0},
   "remaining": {"gpuHours": 0.0, "budget": 50.0},
   "over": {"gpuHours": 12.5, "cost": 50.0},
   "currency": "USD", "pricesPerHour": {"gpu": 4.0, "cpuCore": 0.0, "memoryGiB": 0.0}}
``default``: the configured defaults apply (the user has no limits of their own). ``budgetMonthly`` is a
budget in money (the portal's currency). ``over``: how far the month's use is past a budget: GPU-hours past
the GPU-hour budget, and in money the larger of the cost past the money budget and those GPU-hours at the
user's average GPU-hour price this month. ``pricesPerHour`` (the single-user and all-users API answers) are
the prices in force today, for the hub to tell whether a new server adds cost: ``gpu`` the highest GPU-hour
price over GPU models (the hub does not know which model a server will get), ``cpuCore`` and ``memoryGiB``
the default row's (what a CPU-only server pays; a GPU model's own CPU price, which only an admin can set,
is not looked at).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from portal.billing.periods import month_of
from portal.billing.rates import DEFAULT_MODEL, RateDefaults, effective_rates
from portal.billing.report import UsageRow, monthly_report
from portal.models import User
from portal.settings import PortalSettings

_U = User.__table__


def user_limits(connection: sa.Connection, *, user_name: str, settings: PortalSettings,
                now: datetime) -> dict:
    """The user's limits (their row, or the configured defaults when they have none) and budget use."""
    row = connection.execute(sa.select(_U).where(_U.c.name == user_name)).first()
    year, month = month_of(now, settings.zone)
    usage = monthly_report(connection, year=year, month=month, zone=settings.zone, now=now, user=user_name,
                           defaults=RateDefaults.from_settings(settings))
    return {**_contract(user_name, row, settings, usage[0] if usage else None), **prices_now(connection, settings, now)}


def all_user_limits(connection: sa.Connection, *, settings: PortalSettings, now: datetime) -> list[dict]:
    """user_limits of every known user (limits of their own, or sessions), sorted by name: the same few
    statements however many users (their rows, their names, and one monthly report for all of them)."""
    rows = limit_rows(connection)
    known = sorted(set(rows) | session_user_names(connection))
    year, month = month_of(now, settings.zone)
    used = {r.user_name: r for r in monthly_report(connection, year=year, month=month, zone=settings.zone, now=now,
                                                   defaults=RateDefaults.from_settings(settings))}
    prices = prices_now(connection, settings, now)
    return [{**_contract(name, rows.get(name), settings, used.get(name)), **prices} for name in known]


def prices_now(connection: sa.Connection, settings: PortalSettings, now: datetime) -> dict:
    """The currency and the prices per hour in force today that tell whether a new server adds cost."""
    rates = effective_rates(connection, RateDefaults.from_settings(settings), on=now.astimezone(settings.zone).date())
    base = rates[DEFAULT_MODEL]
    return {"currency": settings.currency,
            "pricesPerHour": {"gpu": max(price.gpu_hour for price in rates.values()),
                              "cpuCore": base.cpu_core_hour, "memoryGiB": base.memory_gib_hour}}


def limit_rows(connection: sa.Connection) -> dict[str, object]:
    """Every user's own limits row, by name (users without one get the configured defaults)."""
    return {row.name: row for row in connection.execute(sa.select(_U))}


def limits_from(user_name: str, row, settings: PortalSettings, usage: UsageRow | None) -> dict:
    """user_limits from what a caller already read: the user's row (or None) and their usage row this month."""
    return _contract(user_name, row, settings, usage)


def session_user_names(connection: sa.Connection) -> set[str]:
    """Every user name the sessions hold, by walking the (user_name, started_at) index from name to name
    (a loose index scan: one probe per user, not a pass over a million sessions)."""
    walk = sa.text("""
        WITH RECURSIVE names(name) AS (
            SELECT min(user_name) FROM pod_sessions
            UNION ALL
            SELECT (SELECT min(user_name) FROM pod_sessions WHERE user_name > names.name)
            FROM names WHERE names.name IS NOT NULL)
        SELECT name FROM names WHERE name IS NOT NULL""")
    return {name for (name,) in connection.execute(walk)}


def _contract(user_name: str, row, settings: PortalSettings, usage: UsageRow | None) -> dict:
    if row is None:
        cpu, memory, gpus, budget, money = (settings.default_cpu_limit, settings.default_memory_gib_limit,
                                            settings.default_gpu_limit, settings.default_gpu_hours_monthly,
                                            settings.default_budget_monthly)
    else:
        cpu, memory, gpus, budget, money = (row.cpu_limit, row.memory_gib_limit, row.gpu_limit,
                                            row.gpu_hours_monthly, row.budget_monthly)
    used = round(usage.gpu_hours, 4) if usage else 0.0
    cost = round(usage.total_cost, 2) if usage else 0.0
    hours_over = 0.0 if budget is None else round(max(used - float(budget), 0.0), 4)
    hour_price = usage.gpu_cost / usage.gpu_hours if usage and usage.gpu_hours > 0 else 0.0
    cost_over = max(hours_over * hour_price, 0.0 if money is None else cost - float(money), 0.0)
    return {
        "user": user_name,
        "default": row is None,
        "limits": {
            "cpu": None if cpu is None else float(cpu),
            "memoryGiB": None if memory is None else float(memory),
            "gpus": None if gpus is None else int(gpus),
            "gpuHoursMonthly": None if budget is None else float(budget),
            "budgetMonthly": None if money is None else float(money),
        },
        "used": {"gpuHoursThisMonth": used, "costThisMonth": cost},
        "remaining": {"gpuHours": None if budget is None else round(max(float(budget) - used, 0.0), 4),
                      "budget": None if money is None else round(max(float(money) - cost, 0.0), 2)},
        "over": {"gpuHours": hours_over, "cost": round(cost_over, 2)},
    }
