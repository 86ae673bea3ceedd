"""Sessions and billing: per user and month or any range; everyone sees their own, admins anyone's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from portal.app.auth.principal import Principal
from portal.app.context import PortalContext
from portal.app.deps import Context, CurrentUser
from portal.app.params import End, Month, Start, UserFilter
from portal.app.ranges import Range, resolve_range
from portal.app.services import sessions
from portal.billing.export import report_csv
from portal.billing.rates import RateDefaults
from portal.billing.report import UsageRow, usage_report

router = APIRouter(tags=["usage"])



def whose(principal: Principal, user: str | None) -> str | None:
    """The user a query is about: admins may pick anyone (or everyone); others only themselves."""
    if principal.admin:
        return user
    if user is not None and user != principal.name:
        raise HTTPException(403, "you may only see your own usage")
    if not principal.is_user:
        raise HTTPException(403, "this token has no usage of its own")
    return principal.name


def report(ctx: PortalContext, period: Range, user: str | None) -> list[UsageRow]:
    with ctx.engine.connect() as connection:
        return usage_report(connection, start=period.start, end=period.end, zone=ctx.settings.zone,
                            now=ctx.clock(), defaults=RateDefaults.from_settings(ctx.settings), user=user)


def row_json(row: UsageRow) -> dict:
    return {"user": row.user_name, "runtime_hours": round(row.runtime_hours, 4), "gpu_hours": round(row.gpu_hours, 4),
            "cpu_core_hours": round(row.cpu_core_hours, 4), "memory_gib_hours": round(row.memory_gib_hours, 4),
            "gpu_cost": round(row.gpu_cost, 2), "cpu_cost": round(row.cpu_cost, 2),
            "memory_cost": round(row.memory_cost, 2), "total_cost": round(row.total_cost, 2)}


@router.get("/api/sessions", summary="Sessions that ran in a month or range, newest first")
def list_sessions(ctx: Context, principal: CurrentUser, month: Month = None, start: Start = None,
                  end: End = None, user: UserFilter = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict:
    now = ctx.clock()
    period = resolve_range(month=month, start=start, end=end, zone=ctx.settings.zone, now=now)
    who = whose(principal, user)
    with ctx.engine.connect() as connection:
        total, rows = sessions.overlapping(connection, start=period.start, end=period.end, user=who,
                                           limit=limit, offset=offset)
    return {"start": period.start.isoformat(), "end": period.end.isoformat(), "total": total,
            "sessions": [sessions.as_json(row, now) for row in rows]}


@router.get("/api/billing", summary="Usage and cost per user in a month or range")
def billing(ctx: Context, principal: CurrentUser, month: Month = None, start: Start = None, end: End = None,
            user: UserFilter = None) -> dict:
    period = resolve_range(month=month, start=start, end=end, zone=ctx.settings.zone, now=ctx.clock())
    rows = report(ctx, period, whose(principal, user))
    return {"start": period.start.isoformat(), "end": period.end.isoformat(), "currency": ctx.settings.currency,
            "rows": [row_json(r) for r in rows],
            "total_cost": round(sum(r.total_cost for r in rows), 2)}


@router.get("/api/billing.csv", summary="The billing report as CSV", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def billing_csv(ctx: Context, principal: CurrentUser, month: Month = None, start: Start = None,
                end: End = None, user: UserFilter = None) -> Response:
    period = resolve_range(month=month, start=start, end=end, zone=ctx.settings.zone, now=ctx.clock())
    rows = report(ctx, period, whose(principal, user))
    zone = ctx.settings.zone
    name = f"billing-{period.start.astimezone(zone):%Y%m%d}-{period.end.astimezone(zone):%Y%m%d}.csv"
    return Response(report_csv(rows, currency=ctx.settings.currency), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
