"""Prices: the rates table (admins edit it) seeded from the settings; per-GPU-model overrides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from portal.models import Rate
from portal.settings import PortalSettings
from portal.sqltypes import upsert

DEFAULT_MODEL = ""  # the rates row that applies to every GPU model without its own row


@dataclass(frozen=True)
class RateDefaults:
    """Fallback prices per hour, used where the rates table has no value."""

    gpu_hour: float = 4.0
    cpu_core_hour: float = 0.0
    memory_gib_hour: float = 0.0

    @classmethod
    def from_settings(cls, settings: PortalSettings) -> RateDefaults:
        return cls(settings.gpu_rate_per_hour, settings.cpu_rate_per_core_hour, settings.memory_rate_per_gib_hour)


def seed_rates(connection: sa.Connection, settings: PortalSettings, *, now: datetime) -> None:
    """Insert the configured rates where the table has no row yet; rows admins edited are kept."""
    rows = [{"gpu_model": DEFAULT_MODEL, "gpu_hour": settings.gpu_rate_per_hour,
             "cpu_core_hour": settings.cpu_rate_per_core_hour,
             "memory_gib_hour": settings.memory_rate_per_gib_hour, "updated_at": now}]
    rows += [{"gpu_model": model, "gpu_hour": rate, "cpu_core_hour": None, "memory_gib_hour": None,
              "updated_at": now} for model, rate in sorted(settings.gpu_model_rates.items())]
    stmt = upsert(connection, Rate.__table__).on_conflict_do_nothing(index_elements=["gpu_model"])
    connection.execute(stmt, rows)


def effective_rates(connection: sa.Connection, defaults: RateDefaults) -> dict[str, RateDefaults]:
    """Prices per GPU model ("" = default) after applying the fallbacks; for display."""
    rows = {r.gpu_model: r for r in connection.execute(sa.select(Rate.__table__)).all()}
    base_row = rows.get(DEFAULT_MODEL)

    def pick(row, name: str) -> float:
        for source in (row, base_row):
            if source is not None and getattr(source, name) is not None:
                return float(getattr(source, name))
        return getattr(defaults, name)

    names = ("gpu_hour", "cpu_core_hour", "memory_gib_hour")
    return {model: RateDefaults(*(pick(rows.get(model), n) for n in names))
            for model in sorted(set(rows) | {DEFAULT_MODEL})}
