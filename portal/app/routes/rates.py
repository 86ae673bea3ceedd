"""Prices. Everyone signed in sees them (they explain the bills); admins change them (audited).

A change takes effect from a local calendar day, today or later; past days keep their prices.
"""

from __future__ import annotations

from fastapi import APIRouter

from portal.app.deps import AdminUser, Context, CurrentUser
from portal.app.services.rates import RateChange, change_rates, rates_view

router = APIRouter(tags=["rates"])


@router.get("/api/rates", summary="Prices in force today, and every price change (past and scheduled)")
def get_rates(ctx: Context, principal: CurrentUser) -> dict:
    return rates_view(ctx)


@router.post("/api/rates", summary="Change prices from a day on (admins; audited)")
def post_rates(ctx: Context, body: RateChange, principal: AdminUser) -> dict:
    change_rates(ctx, body, principal.name)
    return rates_view(ctx)
