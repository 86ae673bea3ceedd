"""The audit log of admin actions: who, what, to what, when, and the result.

An action that changes the world outside the database (deleting a pod, removing a directory) is
written as "started" in its own transaction before it is attempted, then finished with its result:
if the database is down, the action is not attempted, so nothing happens unaudited.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from portal.audit import record
from portal.models import AuditLog

_A = AuditLog.__table__
__all__ = ["finish", "recent", "record", "start"]


def start(engine: sa.Engine, *, actor: str, action: str, target: str, detail: dict, at: datetime) -> int:
    with engine.begin() as connection:
        return record(connection, actor=actor, action=action, target=target,
                      detail={**detail, "result": "started"}, at=at)


def finish(engine: sa.Engine, entry_id: int, *, detail: dict, result: str) -> None:
    with engine.begin() as connection:
        connection.execute(sa.update(_A).where(_A.c.id == entry_id).values(detail={**detail, "result": result}))


def recent(connection: sa.Connection, *, limit: int = 100, offset: int = 0, action: str | None = None) -> list[dict]:
    query = sa.select(_A).order_by(_A.c.at.desc(), _A.c.id.desc()).limit(limit).offset(offset)
    if action:
        query = query.where(_A.c.action == action)
    return [dict(row._mapping) for row in connection.execute(query)]
