"""Sessions and billing pages (the billing page links its CSV export)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from portal.app.context import get_context
from portal.app.deps import CurrentUser
from portal.app.pages.common import render
from portal.app.params import End, Month, Start
from portal.app.params import UserFormFilter as UserFilter
from portal.app.ranges import resolve_range
from portal.app.services.billing import report, whose
from portal.app.services import sessions

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


@router.get("/billing", response_class=HTMLResponse)
def billing_page(request: Request, principal: CurrentUser, month: Month = None, start: Start = None,
                 end: End = None, user: UserFilter = None) -> HTMLResponse:
    ctx = get_context(request)
    period = resolve_range(month=month or None, start=start or None, end=end or None, zone=ctx.settings.zone,
                           now=ctx.clock())
    rows = report(ctx, period, whose(principal, user or None))
    csv_link = "/api/billing.csv?" + _query(month=month, start=start, end=end, user=user)
    return render(request, "billing.html", principal, period=period, rows=rows, csv_link=csv_link,
                  currency=ctx.settings.currency, total=sum(r.total_cost for r in rows),
                  form={"month": month or "", "start": start or "", "end": end or "", "user": user or ""})
