"""Sessions and billing pages (the billing page links its CSV export)."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from portal.app.context import get_context
from portal.app.deps import CurrentUser
from portal.app.pages import charts
from portal.app.pages.cache import cached_page
from portal.app.pages.common import render
from portal.app.params import End, GroupBy, Month, Start
from portal.app.params import UserFormFilter as UserFilter
from portal.app.ranges import resolve_range
from portal.app.services import sessions
from portal.app.services.billing import whose
from portal.app.services.shared_views import billing_rows
from portal.app.services.series import daily
from portal.billing.rates import RateDefaults

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100


def _query(**values) -> str:
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


@router.get("/sessions", response_class=HTMLResponse)
def sessions_page(request: Request, principal: CurrentUser, month: Month = None, start: Start = None,
                  end: End = None, user: UserFilter = None,
                  page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
    ctx = get_context(request)
    now = ctx.clock()
    period = resolve_range(month=month or None, start=start or None, end=end or None, zone=ctx.settings.zone, now=now)
    who = whose(principal, user or None)
    with ctx.engine.connect() as connection:
        total, rows = sessions.overlapping(connection, start=period.start, end=period.end, user=who,
                                           limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    shown = [sessions.as_json(row, now) | {"started": row["started_at"], "ended": row["ended_at"]} for row in rows]
    base = _query(month=month, start=start, end=end, user=user)
    return render(request, "sessions.html", principal, period=period, rows=shown, total=total, page=page,
                  pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1), base=base,
                  form={"month": month or "", "start": start or "", "end": end or "", "user": user or ""})


SORTS = {"key": lambda r: r.user_name, "runtime_hours": lambda r: r.runtime_hours,
         "gpu_hours": lambda r: r.gpu_hours, "cpu_core_hours": lambda r: r.cpu_core_hours,
         "memory_gib_hours": lambda r: r.memory_gib_hours, "gpu_cost": lambda r: r.gpu_cost,
         "cpu_cost": lambda r: r.cpu_cost, "memory_cost": lambda r: r.memory_cost, "total_cost": lambda r: r.total_cost}
Sort = Annotated[Literal["key", "runtime_hours", "gpu_hours", "cpu_core_hours", "memory_gib_hours", "gpu_cost",
                         "cpu_cost", "memory_cost", "total_cost"], Query()]
Order = Annotated[Literal["asc", "desc"], Query()]
GROUP_NAMES = {"user": "User", "gpu_model": "GPU model", "namespace": "Namespace"}
MAX_CHART_DAYS = 400


def _month_after(year: int, month: int, step: int) -> str:
    index = year * 12 + (month - 1) + step
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@router.get("/billing", response_class=HTMLResponse)
@cached_page(admins_share=True)
def billing_page(request: Request, principal: CurrentUser, month: Month = None, start: Start = None,
                 end: End = None, user: UserFilter = None, group_by: GroupBy = "user", sort: Sort = "key",
                 order: Order = "asc") -> HTMLResponse:
    ctx = get_context(request)
    now, zone = ctx.clock(), ctx.settings.zone
    period = resolve_range(month=month or None, start=start or None, end=end or None, zone=zone, now=now)
    who = whose(principal, user or None)
    rows = list(billing_rows(ctx, period, who, group_by))
    rows.sort(key=lambda r: (SORTS[sort](r), r.user_name), reverse=order == "desc")
    local_start = period.start.astimezone(zone)
    if month or not (start or end):
        year, number = local_start.year, local_start.month
        months = {"previous": _month_after(year, number, -1), "next": _month_after(year, number, 1),
                  "current": f"{now.astimezone(zone):%Y-%m}"}
    else:
        months = {"current": f"{now.astimezone(zone):%Y-%m}"}
    keep = {"user": user, "group_by": None if group_by == "user" else group_by}
    links = {name: "/billing?" + _query(month=value, **keep) for name, value in months.items()}
    sort_links = {column: "/billing?" + _query(month=month, start=start, end=end, **keep, sort=column,
                                               order="desc" if column == sort and order == "asc" else "asc")
                  for column in SORTS}
    csv_link = "/api/billing.csv?" + _query(month=month, start=start, end=end, user=user, **{
        "group_by": keep["group_by"]})
    first_day = local_start.date()
    last_day = period.end.astimezone(zone).date() + (timedelta(days=1) if period.end.astimezone(zone).time() != time(0)
                                                     else timedelta(0))
    last_day = min(last_day, first_day + timedelta(days=MAX_CHART_DAYS))
    def days_of_range():
        with ctx.engine.connect() as connection:
            return daily(connection, first=first_day, last=last_day, zone=zone, now=now,
                         defaults=RateDefaults.from_settings(ctx.settings), user=who)

    days = ctx.views.get(("billing-days", first_day, last_day, who), days_of_range)
    currency = ctx.settings.currency
    chart = charts.bar_and_line("chart-days", f"GPU-hours and cost per day, {first_day} to "
                                f"{last_day - timedelta(days=1)}", [f"{d.day:%Y-%m-%d}" for d in days],
                                [d.gpu_hours for d in days], [d.cost for d in days], bar_name="GPU-hours",
                                line_name=f"Cost ({currency})")
    return render(request, "billing.html", principal, period=period, rows=rows, csv_link=csv_link,
                  currency=currency, total=sum(r.total_cost for r in rows),
                  total_gpu_hours=sum(r.gpu_hours for r in rows), links=links, months=months, sort=sort, order=order,
                  sort_links=sort_links, group_by=group_by, group_name=GROUP_NAMES[group_by], charts=[chart],
                  form={"month": month or "", "start": start or "", "end": end or "", "user": user or ""})
