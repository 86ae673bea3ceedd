"""The audit log, newest first (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from portal.app.deps import AdminUser, Context
from portal.app.services import audit

router = APIRouter(tags=["audit"])


@router.get("/api/audit", summary="What admins did, newest first")
def list_audit(ctx: Context, principal: AdminUser, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
               action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z.]+$")] = None) -> dict:
    with ctx.engine.connect() as connection:
        rows = audit.recent(connection, limit=limit, offset=offset, action=action)
    return {"entries": [{**row, "at": row["at"].isoformat()} for row in rows]}
