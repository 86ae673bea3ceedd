"""The admin's overview, and a user's own page (admins may open anyone's)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from portal.app.context import get_context
from portal.app.deps import AdminUser, CurrentUser
from portal.app.pages import charts
from portal.app.pages.cache import cached_page
from portal.app.pages.common import render
from portal.app.params import UserName
from portal.app.services import gpu_usage, overview, sessions, shared_views
from portal.app.services.billing import whose
from portal.app.services.series import daily
from portal.billing.periods import month_of
from portal.billing.rates import RateDefaults

router = APIRouter(include_in_schema=False)
USER_DAYS = 30
RECENT_SESSIONS = 20


@router.get("/", response_class=RedirectResponse)
def home(principal: CurrentUser) -> RedirectResponse:
    return RedirectResponse("/overview" if principal.admin else "/me", status_code=303)


@router.get("/overview", response_class=HTMLResponse)
@cached_page(admins_share=True)
def overview_page(request: Request, principal: AdminUser) -> HTMLResponse:
    ctx = get_context(request)
    view, shown = ctx.views.get(("overview",), lambda: _overview_values(ctx))
    return render(request, "overview.html", principal, view=view, charts=shown, currency=ctx.settings.currency)


def _overview_values(ctx) -> tuple:
    view = overview.build(ctx)
    zone = ctx.settings.zone
    currency = ctx.settings.currency
    hours = [(view.allocation_start + timedelta(hours=i)) for i in range(
        len(next(iter(view.allocation.values()), [])) or len(next(iter(view.utilisation.values()), [])))]
    x = [h.astimezone(zone).strftime("%Y-%m-%d %H:%M") for h in hours]
    allocation = {f"{node} allocated": values for node, values in view.allocation.items()}
    allocation |= {f"{node} in use": values for node, values in view.utilisation.items()}
    shown = [
        charts.bar_and_line("chart-months", "Cost and GPU-hours per month", [m for m, _, _ in view.months],
                            [g for _, g, _ in view.months], [c for _, _, c in view.months],
                            bar_name="GPU-hours", line_name=f"Cost ({currency})"),
        charts.bars("chart-top-users", f"Top users in {view.month} (cost, {currency})",
                    [r.user_name for r in view.by_user], [r.total_cost for r in view.by_user],
                    value_name=f"Cost ({currency})", extra={"GPU-hours": [r.gpu_hours for r in view.by_user]},
                    horizontal=True),
        charts.bars("chart-models", f"Per GPU model in {view.month}",
                    [r.user_name or "(no GPU)" for r in view.by_model],
                    [r.gpu_hours for r in view.by_model], value_name="GPU-hours",
                    extra={f"Cost ({currency})": [r.total_cost for r in view.by_model]}),
        charts.lines("chart-allocation", "Cluster GPUs allocated" + (" and in use" if view.agent else "")
                     + " per node, last 7 days (hourly average)", x, allocation, y_name="GPUs"),
    ]
    return view, shown


def _user_page(request: Request, principal, user: str) -> HTMLResponse:
    ctx = get_context(request)
    values = ctx.views.get(("user-page", user), lambda: _user_values(ctx, user))
    return render(request, "me.html", principal, **values)


def _user_values(ctx, user: str) -> dict:
    """A user's page. Their month's usage and limits come from the shared month report and limit rows
    (``shared_views``); what is theirs alone (days, sessions, GPU use) is read on one connection."""
    now, zone = ctx.clock(), ctx.settings.zone
    year, month = month_of(now, zone)
    usage = shared_views.month_usage(ctx).get(user)
    limits = shared_views.user_limits(ctx, user)
    agent = shared_views.agent_available(ctx)
    rates, rollups = shared_views.rates(ctx), shared_views.rollups_zone(ctx)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=USER_DAYS - 1)
    usage_of, week = {}, []
    with ctx.engine.connect() as connection:
        days = daily(connection, first=first, last=today + timedelta(days=1), zone=zone, now=now,
                     defaults=RateDefaults.from_settings(ctx.settings), user=user, rates=rates,
                     rollups=rollups)
        recent = sessions.latest(connection, start=now - timedelta(days=3650), end=now + timedelta(days=1),
                                 user=user, limit=RECENT_SESSIONS)
        if agent:  # without any GPU samples there is no utilisation to read
            usage_of = gpu_usage.session_usage(connection, [r["pod_uid"] for r in recent if r["gpu_count"] > 0],
                                               now=now, settings=ctx.gpu)
            week = gpu_usage.week_summary(connection, user=user, now=now, settings=ctx.gpu)
    currency = ctx.settings.currency
    chart = charts.bar_and_line("chart-days", f"GPU-hours and cost per day, last {USER_DAYS} days",
                                [f"{d.day:%Y-%m-%d}" for d in days], [d.gpu_hours for d in days],
                                [d.cost for d in days], bar_name="GPU-hours", line_name=f"Cost ({currency})")
    shown = [sessions.as_json(r, now) | {"started": r["started_at"], "ended": r["ended_at"],
                                         "usage": usage_of.get(r["pod_uid"])} for r in recent]
    return {"user": user, "month": f"{year:04d}-{month:02d}", "usage": usage, "limits": limits,
            "charts": [chart], "sessions": shown, "week": week, "currency": currency, "agent": agent}


@router.get("/me", response_class=HTMLResponse)
@cached_page
def my_page(request: Request, principal: CurrentUser) -> HTMLResponse:
    return _user_page(request, principal, whose(principal, None) or principal.name)


@router.get("/users/{username}", response_class=HTMLResponse)
@cached_page(admins_share=True)
def user_page(request: Request, username: UserName, principal: CurrentUser) -> HTMLResponse:
    return _user_page(request, principal, whose(principal, username))

