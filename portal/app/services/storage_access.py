"""Who sees which storage directory, and the admin's removal (no sooner than PORTAL_STORAGE_MIN_IDLE_DAYS)."""

from __future__ import annotations

from portal.app.auth.principal import Principal
from portal.app.context import PortalContext
from portal.app.services.errors import DomainError, Invalid, NotFound
from portal.app.services.storage import StorageError
from portal.app.services.storage_view import StorageEntry, collecting_since, overview, remove_idle

NOT_CONFIGURED = "no storage base path is configured (PORTAL_STORAGE_BASE_PATH)"


def entries(ctx: PortalContext, principal: Principal) -> list[StorageEntry]:
    """All directories for admins; only the user's own (and only that one measured) for others."""
    if ctx.web.storage_base_path is None:
        raise NotFound(NOT_CONFIGURED)
    if not principal.admin and not principal.is_user:
        return []
    with ctx.engine.connect() as connection:
        return overview(connection, ctx.web.storage_base_path, walk_limit=ctx.web.storage_walk_max_entries,
                        user=None if principal.admin else principal.name, cache=ctx.storage_cache())


def sessions_recorded_since(ctx: PortalContext):
    with ctx.engine.connect() as connection:
        return collecting_since(connection)


def remove(ctx: PortalContext, *, name: str, idle_days: int, confirm: str, actor: str,
           orphan: bool = False) -> StorageEntry:
    if ctx.web.storage_base_path is None:
        raise NotFound(NOT_CONFIGURED)
    least = ctx.web.storage_min_idle_days
    if idle_days < least:
        raise Invalid(f"idle_days: storage is removed only after at least {least} idle days "
                      f"(PORTAL_STORAGE_MIN_IDLE_DAYS), not {idle_days}", loc=("body", "idle_days"))
    if confirm != name:
        raise DomainError(f"confirmation does not match: type the directory name {name!r} to remove it")
    try:
        entry = remove_idle(ctx.engine, ctx.web.storage_base_path, name=name, idle_days=idle_days, actor=actor,
                            now=ctx.clock(), walk_limit=ctx.web.storage_walk_max_entries, orphan=orphan)
    except StorageError as exc:
        ctx.metrics.admin_actions.labels("storage.remove", "refused" if exc.status < 500 else "failed").inc()
        raise
    ctx.metrics.admin_actions.labels("storage.remove", "ok").inc()
    return entry
