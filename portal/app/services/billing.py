"""Usage and cost as the API and the pages ask for them: whose usage a request may see, and the report."""

from __future__ import annotations

from datetime import time, timedelta

from portal.app.auth.principal import Principal
from portal.app.context import PortalContext
from portal.app.ranges import Range
from portal.app.services.errors import Forbidden
from portal.billing.rates import RateDefaults
from portal.billing.report import UsageRow, usage_report


def whose(principal: Principal, user: str | None) -> str | None:
    """The user a query is about: admins may pick anyone (or everyone); others only themselves."""
    if principal.admin:
        return user
    if user is not None and user != principal.name:
        raise Forbidden("you may only see your own usage")
    if not principal.is_user:
        raise Forbidden("this token has no usage of its own")
    return principal.name


def report(ctx: PortalContext, period: Range, user: str | None, *, group_by: str = "user") -> list[UsageRow]:
    with ctx.engine.connect() as connection:
        return usage_report(connection, start=period.start, end=period.end, zone=ctx.settings.zone,
                            now=ctx.clock(), defaults=RateDefaults.from_settings(ctx.settings), user=user,
                            group_by=group_by)


def csv_name(period: Range, zone, group_by: str = "user") -> str:
    """billing-<first day>-<last day>.csv, both days inclusive (a range ending at midnight ends the day before)."""
    first = period.start.astimezone(zone)
    end = period.end.astimezone(zone)
    last = end.date() - timedelta(days=1) if end.time() == time(0) else end.date()
    suffix = "" if group_by == "user" else f"-by-{group_by.replace('_', '-')}"
    return f"billing-{first:%Y%m%d}-{last:%Y%m%d}{suffix}.csv"


def row_json(row: UsageRow, group_by: str = "user") -> dict:
    return {group_by: row.user_name, "runtime_hours": round(row.runtime_hours, 4), "gpu_hours": round(row.gpu_hours, 4),
            "cpu_core_hours": round(row.cpu_core_hours, 4), "memory_gib_hours": round(row.memory_gib_hours, 4),
            "gpu_cost": round(row.gpu_cost, 2), "cpu_cost": round(row.cpu_cost, 2),
            "memory_cost": round(row.memory_cost, 2), "total_cost": round(row.total_cost, 2)}
