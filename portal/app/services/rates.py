"""Prices: the view everyone sees, and the admin's change from a day on (audited)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, model_validator

from portal.app.context import PortalContext
from portal.app.services.errors import Invalid
from portal.billing.rates import DEFAULT_MODEL, PRICES, RateDefaults, effective_rates, rate_rows, set_rate

Price = float | None


class RateChange(BaseModel):
    """New prices per hour for the default ("") or one GPU model, from a day on (default: today)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    gpu_model: str = Field(default=DEFAULT_MODEL, max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$",
                           description='"" for the default prices, else a GPU model (node label value)')
    gpu_hour: Price = Field(ge=0, le=1_000_000, description="per GPU-hour; null in a model row: the default's")
    cpu_core_hour: Price = Field(default=None, ge=0, le=1_000_000)
    memory_gib_hour: Price = Field(default=None, ge=0, le=1_000_000)
    effective_from: date | None = Field(default=None, description="first local day (YYYY-MM-DD); today or later")

    @model_validator(mode="after")
    def _default_is_complete(self) -> RateChange:
        if self.gpu_model == DEFAULT_MODEL and any(getattr(self, name) is None for name in PRICES):
            raise ValueError("the default rates need all three prices (0 for free)")
        return self


def rates_view(ctx: PortalContext) -> dict:
    now = ctx.clock()
    today = now.astimezone(ctx.settings.zone).date()
    defaults = RateDefaults.from_settings(ctx.settings)
    with ctx.engine.connect() as connection:
        rows = rate_rows(connection)
        in_force = effective_rates(connection, defaults, on=today)
    return {
        "currency": ctx.settings.currency, "today": today.isoformat(),
        "in_force": [{"gpu_model": model, **vars(price)} for model, price in in_force.items()],
        "history": [{"gpu_model": r.gpu_model, "effective_from": r.effective_from.isoformat(), **r.prices(),
                     "updated_at": r.updated_at.isoformat() if r.updated_at else None, "updated_by": r.updated_by,
                     "scheduled": r.effective_from > today} for r in rows],
    }


def change_rates(ctx: PortalContext, change: RateChange, actor: str) -> None:
    now = ctx.clock()
    today = now.astimezone(ctx.settings.zone).date()
    day = change.effective_from or today
    if day < today:
        raise Invalid(f"rates cannot change before today ({today.isoformat()}): past periods keep the prices "
                      "that were in force then", loc=("body", "effective_from"))
    with ctx.engine.begin() as connection:
        set_rate(connection, gpu_model=change.gpu_model, prices={n: getattr(change, n) for n in PRICES},
                 effective_from=day, actor=actor, now=now)
    ctx.metrics.admin_actions.labels("rates.update", "ok").inc()
