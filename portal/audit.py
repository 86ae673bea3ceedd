"""The audit log's one write: who did what to what, when, with which result (in ``detail``)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from portal.models import AuditLog

_A = AuditLog.__table__


def record(connection: sa.Connection, *, actor: str, action: str, target: str, detail: dict,
           at: datetime) -> int:
    """Add one entry in the caller's transaction; returns its id."""
    values = {"at": at, "actor": actor, "action": action, "target": target[:512], "detail": detail}
    return int(connection.execute(sa.insert(_A).values(**values).returning(_A.c.id)).scalar_one())
