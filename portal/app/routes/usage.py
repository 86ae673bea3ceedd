"""Sessions and billing: per user and month or any range; everyone sees their own, admins anyone's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from portal.app.deps import Context, CurrentUser
from portal.app.params import End, GroupBy, Month, Start, UserFilter
from portal.app.ranges import resolve_range
from portal.app.services import sessions
from portal.app.services.billing import csv_name, report, row_json, whose
from portal.billing.export import report_csv

router = APIRouter(tags=["usage"])


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
            user: UserFilter = None, group_by: GroupBy = "user") -> dict:
    period = resolve_range(month=month, start=start, end=end, zone=ctx.settings.zone, now=ctx.clock())
    rows = report(ctx, period, whose(principal, user), group_by=group_by)
    return {"start": period.start.isoformat(), "end": period.end.isoformat(), "currency": ctx.settings.currency,
            "group_by": group_by, "rows": [row_json(r, group_by) for r in rows],
            "total_cost": round(sum(r.total_cost for r in rows), 2),
            "total_gpu_hours": round(sum(r.gpu_hours for r in rows), 4)}


@router.get("/api/billing.csv", summary="The billing report as CSV", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def billing_csv(ctx: Context, principal: CurrentUser, month: Month = None, start: Start = None,
                end: End = None, user: UserFilter = None, group_by: GroupBy = "user") -> Response:
    """UTF-8 with a byte-order mark (so Excel reads names as UTF-8), named after the first and the last
    day it covers (inclusive)."""
    period = resolve_range(month=month, start=start, end=end, zone=ctx.settings.zone, now=ctx.clock())
    rows = report(ctx, period, whose(principal, user), group_by=group_by)
    body = "\ufeff" + report_csv(rows, currency=ctx.settings.currency, key=group_by)
    name = csv_name(period, ctx.settings.zone, group_by)
    return Response(body.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
