"""Data that is the same whoever asks, cached once for every page of this process (``ctx.views``).

The billing page, the overview and every user's page all need this month's report for everyone and the
users' limit rows; computed once (one statement each), every user's page picks its own row out of them
instead of running its own report twice (its usage, then its limits). The entries live and are cleared
with the rest of the view cache: a successful change (limits, rates) empties it, so no page is built from
a report or a limits row older than the change.
"""

from __future__ import annotations

from portal.app.context import PortalContext
from portal.app.ranges import Range, resolve_range
from portal.app.services.billing import report
from portal.app.services.gpu_usage import agent_reports
from portal.billing.limits import limit_rows, limits_from
from portal.billing.rates import RateRow, rate_rows
from portal.billing.report import UsageRow
from portal.rollups import rollup_zone


def billing_rows(ctx: PortalContext, period: Range, who: str | None, group_by: str = "user") -> list[UsageRow]:
    """The billing report of ``period`` (``who``: one user, or None for everyone), cached."""
    return ctx.views.get(("billing", period, who, group_by), lambda: report(ctx, period, who, group_by=group_by))


def this_month(ctx: PortalContext) -> Range:
    return resolve_range(month=None, start=None, end=None, zone=ctx.settings.zone, now=ctx.clock())


def month_usage(ctx: PortalContext) -> dict[str, UsageRow]:
    """This month's usage row of every user with any, by name (the billing page's default report)."""
    return {row.user_name: row for row in billing_rows(ctx, this_month(ctx), None)}


def own_limit_rows(ctx: PortalContext) -> dict[str, object]:
    """Every user's own limits row, by name."""
    def read() -> dict[str, object]:
        with ctx.engine.connect() as connection:
            return limit_rows(connection)

    return ctx.views.get(("limit-rows",), read)


def user_limits(ctx: PortalContext, user: str) -> dict:
    """What ``/api/limits/{user}`` reports (limits, this month's use, what is left and over), from the shared
    month report and limit rows."""
    return limits_from(user, own_limit_rows(ctx).get(user), ctx.settings, month_usage(ctx).get(user))


def rates(ctx: PortalContext) -> list[RateRow]:
    """Every rates row (prices and their changes)."""
    def read() -> list[RateRow]:
        with ctx.engine.connect() as connection:
            return rate_rows(connection)

    return ctx.views.get(("rate-rows",), read)


def rollups_zone(ctx: PortalContext) -> str | None:
    """The zone the daily rollups are made in (a rebuild rewrites them, which clears this)."""
    def read() -> str | None:
        with ctx.engine.connect() as connection:
            return rollup_zone(connection)

    return ctx.views.get(("rollup-zone",), read)


def agent_available(ctx: PortalContext) -> bool:
    """Whether a GPU agent ever sent samples here."""
    def read() -> bool:
        with ctx.engine.connect() as connection:
            return agent_reports(connection)

    return ctx.views.get(("agent-reports",), read)
