"""Users' storage directories. Everyone sees their own; admins see all and remove idle ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from portal.app.auth.principal import Principal
from portal.app.context import PortalContext
from portal.app.deps import AdminUser, Context, CurrentUser
from portal.app.services.storage import StorageError
from portal.app.services.storage_view import StorageEntry, collecting_since, overview, remove_idle

router = APIRouter(tags=["storage"])
DirName = Annotated[str, Path(min_length=1, max_length=255, description="A directory directly under the base")]


class RemoveStorage(BaseModel):
    idle_days: int = Field(ge=1, le=36500, description="Remove only if unused for at least this many days")
    confirm: str = Field(max_length=255, description="The directory name, typed again")
    orphan: bool = Field(default=False, description="Confirm removing a directory that belongs to no known user")


def entries(ctx: PortalContext, principal: Principal) -> list[StorageEntry]:
    """All directories for admins; only the user's own (and only that one measured) for others."""
    if ctx.web.storage_base_path is None:
        raise HTTPException(404, "no storage base path is configured (PORTAL_STORAGE_BASE_PATH)")
    if not principal.admin and not principal.is_user:
        return []
    try:
        with ctx.engine.connect() as connection:
            return overview(connection, ctx.web.storage_base_path, walk_limit=ctx.web.storage_walk_max_entries,
                            user=None if principal.admin else principal.name, cache=ctx.storage_cache())
    except StorageError as exc:
        raise HTTPException(exc.status, exc.reason) from None


def sessions_recorded_since(ctx: PortalContext):
    with ctx.engine.connect() as connection:
        return collecting_since(connection)


def remove(ctx: PortalContext, *, name: str, idle_days: int, confirm: str, actor: str,
           orphan: bool = False) -> StorageEntry:
    if ctx.web.storage_base_path is None:
        raise HTTPException(404, "no storage base path is configured (PORTAL_STORAGE_BASE_PATH)")
    if confirm != name:
        raise HTTPException(400, f"confirmation does not match: type the directory name {name!r} to remove it")
    try:
        entry = remove_idle(ctx.engine, ctx.web.storage_base_path, name=name, idle_days=idle_days, actor=actor,
                            now=ctx.clock(), walk_limit=ctx.web.storage_walk_max_entries, orphan=orphan)
    except StorageError as exc:
        ctx.metrics.admin_actions.labels("storage.remove", "refused" if exc.status < 500 else "failed").inc()
        raise HTTPException(exc.status, exc.reason) from None
    ctx.metrics.admin_actions.labels("storage.remove", "ok").inc()
    return entry


@router.get("/api/storage", summary="Storage directories (yours, or all for admins); idle_days filters")
def list_storage(ctx: Context, principal: CurrentUser,
                 idle_days: Annotated[int | None, Query(ge=0, le=36500)] = None) -> dict:
    now = ctx.clock()
    found = entries(ctx, principal)
    if idle_days is not None:
        found = [e for e in found if (e.idle_days(now) or 0.0) >= idle_days and e.activity_known]
    since = sessions_recorded_since(ctx)
    return {"base": str(ctx.web.storage_base_path), "sessions_recorded_since": since.isoformat() if since else None,
            "directories": [e.as_json(now) for e in found]}


@router.post("/api/storage/{name}/remove", summary="Remove an idle user's directory (admins; confirm with its name)")
def remove_storage(ctx: Context, name: DirName, body: RemoveStorage, principal: AdminUser) -> dict:
    entry = remove(ctx, name=name, idle_days=body.idle_days, confirm=body.confirm, actor=principal.name,
                   orphan=body.orphan)
    return {"removed": entry.name, "user": entry.user, "size_bytes": entry.size_bytes}
