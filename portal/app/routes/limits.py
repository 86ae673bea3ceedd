"""Per-user limits. GET is what the hub's pre-spawn hook calls (with the hub's token); admins edit.

Answer (null = unlimited):
  {"user": "alice", "limits": {"cpu": 16.0, "memoryGiB": 64.0, "gpus": 2, "gpuHoursMonthly": 100.0},
   "used": {"gpuHoursThisMonth": 12.5}, "remaining": {"gpuHours": 87.5}}
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from portal.app.auth.guard import hub_token_allowed
from portal.app.auth.principal import Principal
from portal.app.context import PortalContext
from portal.app.deps import AdminUser, Context, CurrentUser
from portal.app.params import UserName
from portal.app.services.limits_edit import reset_limits, set_limits
from portal.billing.limits import all_user_limits, user_limits

router = APIRouter(tags=["limits"])


class Limits(BaseModel):
    """Every field is required; null means unlimited."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    cpu: float | None = Field(ge=0, le=1_000_000, description="CPU cores")
    memoryGiB: float | None = Field(ge=0, le=1_000_000_000, description="Memory in GiB")
    gpus: int | None = Field(ge=0, le=1_000_000, description="GPUs per server")
    gpuHoursMonthly: float | None = Field(ge=0, le=1_000_000_000, description="GPU-hour budget per calendar month")


class LimitsReport(BaseModel):
    user: str
    limits: Limits
    used: dict[str, float]
    remaining: dict[str, float | None]


def limits_of(ctx: PortalContext, user: str) -> dict:
    with ctx.engine.connect() as connection:
        return user_limits(connection, user_name=user, settings=ctx.settings, now=ctx.clock())


def every_users_limits(ctx: PortalContext) -> list[dict]:
    with ctx.engine.connect() as connection:
        return all_user_limits(connection, settings=ctx.settings, now=ctx.clock())


def check_may_see(principal: Principal, user: str) -> None:
    if not (principal.role == "hub" or principal.may_see(user)):
        raise HTTPException(403, "you may only see your own limits")


@router.get("/api/limits", summary="Limits of every known user (admins)")
def list_limits(ctx: Context, principal: AdminUser) -> dict:
    return {"users": every_users_limits(ctx)}


@router.get("/api/limits/{username}", summary="A user's limits and GPU-hour budget use this month",
            response_model=LimitsReport)
@hub_token_allowed
def get_limits(ctx: Context, username: UserName, principal: CurrentUser) -> dict:
    check_may_see(principal, username)
    return limits_of(ctx, username)


@router.put("/api/limits/{username}", summary="Set a user's limits (admins; audited)", response_model=LimitsReport)
def put_limits(ctx: Context, username: UserName, body: Limits, principal: AdminUser) -> dict:
    with ctx.engine.begin() as connection:
        set_limits(connection, user=username, limits=body.model_dump(), actor=principal.name, now=ctx.clock())
    return limits_of(ctx, username)


@router.delete("/api/limits/{username}", summary="Return a user to the default limits (admins; audited)",
               response_model=LimitsReport)
def delete_limits(ctx: Context, username: UserName, principal: AdminUser) -> dict:
    with ctx.engine.begin() as connection:
        if not reset_limits(connection, user=username, actor=principal.name, now=ctx.clock()):
            raise HTTPException(404, f"{username!r} has no limits of their own (the defaults apply)")
    return limits_of(ctx, username)
