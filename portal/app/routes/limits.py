"""Per-user limits. GET is what the hub's pre-spawn hook calls (with the hub's token); admins edit.

Answer (null = unlimited; the full contract is in portal/billing/limits.py and the OpenAPI schema):
  {"user": "alice", "default": false,
   "limits": {"cpu": 16.0, "memoryGiB": 64.0, "gpus": 2, "gpuHoursMonthly": 100.0, "budgetMonthly": 500.0},
   "used": {"gpuHoursThisMonth": 12.5, "costThisMonth": 50.0}, "remaining": {"gpuHours": 87.5, "budget": 450.0},
   "over": {"gpuHours": 0.0, "cost": 0.0}, "currency": "USD",
   "pricesPerHour": {"gpu": 4.0, "cpuCore": 0.0, "memoryGiB": 0.0}}
"""

from __future__ import annotations

from fastapi import APIRouter

from portal.app.auth.guard import hub_token_allowed
from portal.app.deps import AdminUser, Context, CurrentUser
from portal.app.params import UserName
from portal.app.services import limits
from portal.app.services.limits import Limits, LimitsReport

router = APIRouter(tags=["limits"])


@router.get("/api/limits", summary="Limits of every known user (admins)")
def list_limits(ctx: Context, principal: AdminUser) -> dict:
    return {"users": limits.every_users_limits(ctx)}


@router.get("/api/limits/{username}", summary="A user's limits and budget use (GPU-hours, money) this month",
            response_model=LimitsReport)
@hub_token_allowed
def get_limits(ctx: Context, username: UserName, principal: CurrentUser) -> dict:
    limits.check_may_see(principal, username)
    return limits.limits_of(ctx, username)


@router.put("/api/limits/{username}", summary="Set a user's limits (admins; audited)", response_model=LimitsReport)
def put_limits(ctx: Context, username: UserName, body: Limits, principal: AdminUser) -> dict:
    return limits.save(ctx, user=username, limits=body, actor=principal.name)


@router.delete("/api/limits/{username}", summary="Return a user to the default limits (admins; audited)",
               response_model=LimitsReport)
def delete_limits(ctx: Context, username: UserName, principal: AdminUser) -> dict:
    return limits.reset(ctx, user=username, actor=principal.name)
