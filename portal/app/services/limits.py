"""Limits as the API and the pages use them: read one user's or everyone's, set, reset (audited)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from portal.app.auth.principal import Principal
from portal.app.context import PortalContext
from portal.app.services.errors import Forbidden, NotFound
from portal.app.services.limits_edit import reset_limits, set_limits
from portal.billing.limits import all_user_limits, user_limits


class Limits(BaseModel):
    """Every field is required; null means unlimited."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    cpu: float | None = Field(ge=0, le=1_000_000, description="CPU cores")
    memoryGiB: float | None = Field(ge=0, le=1_000_000_000, description="Memory in GiB")
    gpus: int | None = Field(ge=0, le=1_000_000, description="GPUs per server")
    gpuHoursMonthly: float | None = Field(ge=0, le=1_000_000_000, description="GPU-hour budget per calendar month")
    budgetMonthly: float | None = Field(default=None, ge=0, le=1_000_000_000_000,
                                        description="Budget in money per calendar month (optional)")


class Used(BaseModel):
    gpuHoursThisMonth: float = Field(description="GPU-hours used this calendar month")
    costThisMonth: float = Field(description="cost this calendar month, in `currency`")


class Remaining(BaseModel):
    gpuHours: float | None = Field(description="GPU-hours left of gpuHoursMonthly (0 when used up; null: unlimited)")
    budget: float | None = Field(description="money left of budgetMonthly, in `currency` (0 when spent; the hub "
                                             "then refuses servers that add cost; null: no money budget)")


class Over(BaseModel):
    gpuHours: float = Field(description="GPU-hours past gpuHoursMonthly this month")
    cost: float = Field(description="money past the budgets this month: the larger of the cost past budgetMonthly "
                                    "and the GPU-hours past gpuHoursMonthly at the month's average GPU-hour price")


class PricesPerHour(BaseModel):
    gpu: float = Field(description="the highest GPU-hour price in force today, over GPU models")
    cpuCore: float = Field(description="the price of a CPU core-hour in force today (the default rates)")
    memoryGiB: float = Field(description="the price of a GiB-hour of memory in force today (the default rates)")


class LimitsReport(BaseModel):
    user: str
    default: bool = Field(description="the configured defaults apply (no limits of the user's own)")
    limits: Limits
    used: Used
    remaining: Remaining
    over: Over = Field(description="use past the budgets this month: gpuHours, cost")
    currency: str = Field(description="the currency of every amount of money here")
    pricesPerHour: PricesPerHour = Field(description="prices in force today, in `currency`: the hub refuses a new "
                                                     "server that adds cost at these prices once remaining.budget is 0")


def limits_of(ctx: PortalContext, user: str) -> dict:
    with ctx.engine.connect() as connection:
        return user_limits(connection, user_name=user, settings=ctx.settings, now=ctx.clock())


def every_users_limits(ctx: PortalContext) -> list[dict]:
    with ctx.engine.connect() as connection:
        return all_user_limits(connection, settings=ctx.settings, now=ctx.clock())


def check_may_see(principal: Principal, user: str) -> None:
    if not (principal.role == "hub" or principal.may_see(user)):
        raise Forbidden("you may only see your own limits")


def save(ctx: PortalContext, *, user: str, limits: Limits, actor: str) -> dict:
    with ctx.engine.begin() as connection:
        set_limits(connection, user=user, limits=limits.model_dump(), actor=actor, now=ctx.clock())
    return limits_of(ctx, user)


def reset(ctx: PortalContext, *, user: str, actor: str) -> dict:
    """Back to the configured defaults; NotFound when the user has no limits of their own."""
    with ctx.engine.begin() as connection:
        if not reset_limits(connection, user=user, actor=actor, now=ctx.clock()):
            raise NotFound(f"{user!r} has no limits of their own (the defaults apply)")
    return limits_of(ctx, user)
