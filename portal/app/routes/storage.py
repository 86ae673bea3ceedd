"""Users' storage directories. Everyone sees their own; admins see all and remove idle ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from portal.app.deps import AdminUser, Context, CurrentUser
from portal.app.params import DirName
from portal.app.services.storage_access import entries, remove, sessions_recorded_since

router = APIRouter(tags=["storage"])


class RemoveStorage(BaseModel):
    idle_days: int = Field(ge=1, le=36500, description="Remove only if unused for at least this many days "
                                                       "(and never fewer than PORTAL_STORAGE_MIN_IDLE_DAYS)")
    confirm: str = Field(max_length=255, description="The directory name, typed again")
    orphan: bool = Field(default=False, description="Confirm removing a directory that belongs to no known user")


@router.get("/api/storage", summary="Storage directories (yours, or all for admins); idle_days filters")
def list_storage(ctx: Context, principal: CurrentUser,
                 idle_days: Annotated[int | None, Query(ge=0, le=36500)] = None) -> dict:
    now = ctx.clock()
    found = entries(ctx, principal)
    if idle_days is not None:
        found = [e for e in found if (e.idle_days(now) or 0.0) >= idle_days and e.activity_known]
    since = sessions_recorded_since(ctx)
    return {"base": str(ctx.web.storage_base_path), "sessions_recorded_since": since.isoformat() if since else None,
            "min_idle_days": ctx.web.storage_min_idle_days, "directories": [e.as_json(now) for e in found]}


@router.post("/api/storage/{name}/remove", summary="Remove an idle user's directory (admins; confirm with its name)")
def remove_storage(ctx: Context, name: DirName, body: RemoveStorage, principal: AdminUser) -> dict:
    entry = remove(ctx, name=name, idle_days=body.idle_days, confirm=body.confirm, actor=principal.name,
                   orphan=body.orphan)
    return {"removed": entry.name, "user": entry.user, "size_bytes": entry.size_bytes}
