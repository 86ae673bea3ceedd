"""Storage page: directories with size, owner and last use; admins remove idle ones (confirmed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from portal.app.context import get_context
from portal.app.deps import AdminUser, CurrentUser
from portal.app.pages.common import back_to, render
from portal.app.params import DirName
from portal.app.services.errors import DomainError
from portal.app.services.storage_access import entries, remove, sessions_recorded_since

router = APIRouter(include_in_schema=False)
DEFAULT_IDLE_DAYS = 90


@router.get("/storage", response_class=HTMLResponse)
def storage_page(request: Request, principal: CurrentUser,
                 idle_days: Annotated[int, Query(ge=1, le=36500)] = DEFAULT_IDLE_DAYS) -> HTMLResponse:
    ctx = get_context(request)
    now = ctx.clock()
    try:
        found, problem = entries(ctx, principal), None
    except DomainError as exc:
        found, problem = [], exc.reason
    return render(request, "storage.html", principal, entries=found, now=now, idle_days=idle_days,
                  problem=problem, base=ctx.web.storage_base_path, since=sessions_recorded_since(ctx))


@router.post("/storage/{name}/remove")
def remove_form(request: Request, name: DirName, principal: AdminUser,
                idle_days: Annotated[int, Form(ge=1, le=36500)],
                confirm: Annotated[str, Form(max_length=255)] = "",
                orphan: Annotated[bool, Form()] = False) -> RedirectResponse:
    entry = remove(get_context(request), name=name, idle_days=idle_days, confirm=confirm.strip(),
                   actor=principal.name, orphan=orphan)
    return back_to(request, f"/storage?idle_days={idle_days}", f"Removed the storage directory {entry.name}.")
