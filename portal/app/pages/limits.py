"""Limits page: your own limits, or every known user's with an edit form for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from portal.app.context import get_context
from portal.app.deps import AdminUser, CurrentUser
from portal.app.pages.common import back_to, render
from portal.app.params import UserName
from portal.app.services import limits as limits_service
from portal.app.services.errors import Invalid
from portal.app.services.limits import Limits

router = APIRouter(include_in_schema=False)
Field_ = Annotated[str, Form(max_length=32)]


@router.get("/limits", response_class=HTMLResponse)
def limits_page(request: Request, principal: CurrentUser) -> HTMLResponse:
    ctx = get_context(request)
    reports = limits_service.every_users_limits(ctx) if principal.admin else [limits_service.limits_of(ctx, principal.name)]
    return render(request, "limits.html", principal, reports=reports)


@router.post("/limits/{username}")
def limits_form(request: Request, username: UserName, principal: AdminUser, cpu: Field_ = "",
                memoryGiB: Field_ = "", gpus: Field_ = "", gpuHoursMonthly: Field_ = "") -> RedirectResponse:  # noqa: N803
    raw = {"cpu": cpu, "memoryGiB": memoryGiB, "gpus": gpus, "gpuHoursMonthly": gpuHoursMonthly}
    try:
        limits = Limits.model_validate({k: v.strip() or None for k, v in raw.items()})
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        message = f"limits for {username} not saved: {problems} (leave a field empty for unlimited)"
        raise Invalid(message) from None
    limits_service.save(get_context(request), user=username, limits=limits, actor=principal.name)
    return back_to(request, "/limits", f"Saved the limits of {username}.")
