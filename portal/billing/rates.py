"""Prices over time: the rates table, per-GPU-model overrides, and the price timeline reports use.

Each rates row holds the prices of one GPU model ("" = the default) from a local calendar day on,
until that model's next row. A change is a new row from today or a later day, so a report over a past
month uses the prices that were in force then. An override's empty price falls back to the default row
in force on the same day, and the default's to the configured settings.

At start the configured rates are authoritative: when they differ from those applied at the last start
(``portal_meta.configured_rates``), they take effect from today, audited as ``system:settings``. Admins
may change prices in between (audited too); a restart with the same configuration keeps their change.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from portal.audit import record
from portal.meta import read_value, write_value
from portal.models import Rate
from portal.rollups import day_start
from portal.settings import PortalSettings
from portal.sqltypes import upsert

DEFAULT_MODEL = ""  # the rates rows that apply to every GPU model without rows of its own
SINCE_ALWAYS = date(1970, 1, 1)  # rows of a fresh database apply to all history
CONFIGURED_KEY = "configured_rates"
SETTINGS_ACTOR = "system:settings"
PRICES = ("gpu_hour", "cpu_core_hour", "memory_gib_hour")
_R = Rate.__table__


@dataclass(frozen=True)
class RateDefaults:
    """Prices per hour; also the fallback where the rates table has no value."""

    gpu_hour: float = 4.0
    cpu_core_hour: float = 0.0
    memory_gib_hour: float = 0.0

    @classmethod
    def from_settings(cls, settings: PortalSettings) -> RateDefaults:
        return cls(settings.gpu_rate_per_hour, settings.cpu_rate_per_core_hour, settings.memory_rate_per_gib_hour)


@dataclass(frozen=True)
class RateRow:
    gpu_model: str
    effective_from: date
    gpu_hour: float | None
    cpu_core_hour: float | None
    memory_gib_hour: float | None
    updated_at: datetime | None = None
    updated_by: str | None = None

    def prices(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in PRICES}


def rate_rows(connection: sa.Connection) -> list[RateRow]:
    """Every rates row, by model then day."""
    rows = connection.execute(sa.select(_R).order_by(_R.c.gpu_model, _R.c.effective_from)).mappings()
    return [RateRow(**{k: row[k] for k in RateRow.__dataclass_fields__}) for row in rows]


def rows_in_force(rows: list[RateRow], day: date) -> dict[str, RateRow]:
    """Per model, the row in force on ``day`` (models whose first row is later are left out)."""
    found: dict[str, RateRow] = {}
    for row in rows:  # sorted by model, then day: the last one not after ``day`` wins
        if row.effective_from <= day:
            found[row.gpu_model] = row
    return found


def resolve(rows: dict[str, RateRow], defaults: RateDefaults) -> dict[str, RateDefaults]:
    """Prices per model ("" included) after the fallbacks, from the rows in force on one day."""
    base = rows.get(DEFAULT_MODEL)

    def pick(row: RateRow | None, name: str) -> float:
        for source in (row, base):
            if source is not None and getattr(source, name) is not None:
                return float(getattr(source, name))
        return getattr(defaults, name)

    return {model: RateDefaults(*(pick(rows.get(model), name) for name in PRICES))
            for model in sorted(set(rows) | {DEFAULT_MODEL})}


def effective_rates(connection: sa.Connection, defaults: RateDefaults, *, on: date | None = None
                    ) -> dict[str, RateDefaults]:
    """Prices per GPU model ("" = default) in force on ``on`` (default: the latest rows), after fallbacks."""
    return resolve(rows_in_force(rate_rows(connection), on or date.max), defaults)


@dataclass(frozen=True)
class PricePeriod:
    """Prices that hold, unchanged, over [start, end) (local days [first_day, last_day))."""

    start: datetime
    end: datetime
    first_day: date
    last_day: date
    prices: dict[str, RateDefaults]  # per GPU model, "" = every other model


def price_timeline(connection: sa.Connection | None, *, start: datetime, end: datetime, zone: ZoneInfo,
                   defaults: RateDefaults, rows: list[RateRow] | None = None) -> list[PricePeriod]:
    """The periods of constant prices that cover [start, end), in order (at least one); ``rows``: the rates
    rows when the caller has them (else they are read)."""
    rows = rate_rows(connection) if rows is None else rows
    changes = sorted({row.effective_from for row in rows} - {date.min})
    bounds = [date.min, *changes, date.max]
    periods = []
    for first, last in zip(bounds, bounds[1:], strict=False):
        lo = start if first == date.min else max(start, day_start(first, zone))
        hi = end if last == date.max else min(end, day_start(last, zone))
        if hi > lo:
            periods.append(PricePeriod(lo, hi, first, last, resolve(rows_in_force(rows, first), defaults)))
    return periods


# -- changes -----------------------------------------------------------------------------------------
def set_rate(connection: sa.Connection, *, gpu_model: str, prices: dict[str, float | None], effective_from: date,
             actor: str, now: datetime) -> RateRow | None:
    """Prices of ``gpu_model`` from ``effective_from`` on (replacing a row of that same day); audited in the
    same transaction. Returns the row in force before on that day (None when there was none)."""
    before = rows_in_force(rate_rows(connection), effective_from).get(gpu_model)
    values = {name: prices[name] for name in PRICES}
    stmt = upsert(connection, _R).values(gpu_model=gpu_model, effective_from=effective_from, updated_at=now,
                                         updated_by=actor, **values)
    connection.execute(stmt.on_conflict_do_update(index_elements=["gpu_model", "effective_from"],
                                                  set_={**values, "updated_at": now, "updated_by": actor}))
    record(connection, actor=actor, action="rates.update", target=gpu_model or "default",
           detail={"effective_from": effective_from.isoformat(), "before": before.prices() if before else None,
                   "after": values, "result": "ok"}, at=now)
    return before


def configured_rates(settings: PortalSettings) -> dict[str, dict[str, float | None]]:
    """The rates the settings ask for, per model: the default's three prices and each model's GPU price."""
    rates = {DEFAULT_MODEL: asdict(RateDefaults.from_settings(settings))}
    for model, gpu_hour in sorted(settings.gpu_model_rates.items()):
        rates[model] = {"gpu_hour": gpu_hour, "cpu_core_hour": None, "memory_gib_hour": None}
    return rates


def apply_configured_rates(connection: sa.Connection, settings: PortalSettings, *, now: datetime) -> list[str]:
    """Make the configured rates the ones in force, when the configuration changed since the last start.

    A fresh database gets them from the beginning; otherwise each model whose prices differ gets a new
    row from today (local), and a model the settings no longer price gets an empty row (the default applies).
    Returns the models changed ("" = default). Idempotent.
    """
    wanted = configured_rates(settings)
    fingerprint = json.dumps(wanted, sort_keys=True)
    if read_value(connection, CONFIGURED_KEY) == fingerprint:
        return []  # the same configuration as last time: keep what admins set meanwhile
    rows = rate_rows(connection)
    today = now.astimezone(settings.zone).date()
    in_force = rows_in_force(rows, today)
    empty = dict.fromkeys(PRICES)
    day = SINCE_ALWAYS if not rows else today
    changed = []
    for model in sorted(set(wanted) | set(in_force)):
        prices = wanted.get(model, empty)
        current = in_force[model].prices() if model in in_force else None
        if current == prices or (current is None and prices == empty):
            continue
        set_rate(connection, gpu_model=model, prices=prices, effective_from=day, actor=SETTINGS_ACTOR, now=now)
        changed.append(model)
    write_value(connection, CONFIGURED_KEY, fingerprint)
    return changed


def seed_rates(connection: sa.Connection, settings: PortalSettings, *, now: datetime) -> list[str]:
    """The name this had when it only filled an empty table; see apply_configured_rates."""
    return apply_configured_rates(connection, settings, now=now)
