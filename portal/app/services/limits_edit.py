"""Admins set a user's limits (None = unlimited) or return them to the configured defaults; audited
in the same transaction as the change, so the log and the limits never disagree."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from portal.app.services import audit
from portal.models import User
from portal.sqltypes import upsert

_U = User.__table__
FIELDS = {"cpu": "cpu_limit", "memoryGiB": "memory_gib_limit", "gpus": "gpu_limit",
          "gpuHoursMonthly": "gpu_hours_monthly", "budgetMonthly": "budget_monthly"}


def _current(connection: sa.Connection, user: str) -> dict | None:
    row = connection.execute(sa.select(_U).where(_U.c.name == user)).first()
    return None if row is None else {key: getattr(row, column) for key, column in FIELDS.items()}


def set_limits(connection: sa.Connection, *, user: str, limits: dict, actor: str, now: datetime) -> None:
    before = _current(connection, user)
    values = {column: limits[key] for key, column in FIELDS.items()}
    stmt = upsert(connection, _U).values(name=user, updated_at=now, updated_by=actor, **values)
    connection.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                                  set_={**values, "updated_at": now, "updated_by": actor}))
    audit.record(connection, actor=actor, action="limits.update", target=user,
                 detail={"before": before, "after": dict(limits), "result": "ok"}, at=now)


def reset_limits(connection: sa.Connection, *, user: str, actor: str, now: datetime) -> bool:
    """Delete the user's own limits (the defaults apply again); False when they had none."""
    before = _current(connection, user)
    if before is None:
        return False
    connection.execute(sa.delete(_U).where(_U.c.name == user))
    audit.record(connection, actor=actor, action="limits.reset", target=user,
                 detail={"before": before, "after": None, "result": "ok"}, at=now)
    return True
