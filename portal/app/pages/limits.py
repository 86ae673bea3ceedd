"""Limits page: your own limits, or every known user's (searched, a page at a time) with an edit form and
a reset to the defaults for admins. Users over a budget stand out, with the overrun in hours and money."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
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
PAGE_SIZE = 50


@router.get("/limits", response_class=HTMLResponse)
def limits_page(request: Request, principal: CurrentUser,
                q: Annotated[str, Query(max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")] = "",
                page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                over: Annotated[bool, Query()] = False) -> HTMLResponse:
    ctx = get_context(request)
    if principal.admin:
        reports = limits_service.every_users_limits(ctx)
    else:
        reports = [limits_service.limits_of(ctx, principal.name)]
    needle = q.strip().casefold()
    if needle:
        reports = [r for r in reports if needle in r["user"].casefold()]
    if over:
        reports = [r for r in reports if r["over"]["gpuHours"] > 0 or r["over"]["cost"] > 0]
    total = len(reports)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(page, pages)
    shown = reports[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    base = urlencode({k: v for k, v in {"q": q, "over": "true" if over else ""}.items() if v})
    s = ctx.settings
    defaults = {"cpu": s.default_cpu_limit, "memoryGiB": s.default_memory_gib_limit, "gpus": s.default_gpu_limit,
                "gpuHoursMonthly": s.default_gpu_hours_monthly, "budgetMonthly": s.default_budget_monthly}
    return render(request, "limits.html", principal, reports=shown, total=total, page=page, pages=pages, q=q,
                  over=over, base=base, defaults=defaults, currency=s.currency)


@router.post("/limits/{username}")
def limits_form(request: Request, username: UserName, principal: AdminUser, cpu: Field_ = "",
                memoryGiB: Field_ = "", gpus: Field_ = "", gpuHoursMonthly: Field_ = "",  # noqa: N803
                budgetMonthly: Field_ = "") -> RedirectResponse:  # noqa: N803
    raw = {"cpu": cpu, "memoryGiB": memoryGiB, "gpus": gpus, "gpuHoursMonthly": gpuHoursMonthly,
           "budgetMonthly": budgetMonthly}
    try:
        limits = Limits.model_validate({k: v.strip() or None for k, v in raw.items()})
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        message = f"limits for {username} not saved: {problems} (leave a field empty for unlimited)"
        raise Invalid(message) from None
    limits_service.save(get_context(request), user=username, limits=limits, actor=principal.name)
    return back_to(request, "/limits", f"Saved the limits of {username}.")


@router.post("/limits/{username}/reset")
def limits_reset_form(request: Request, username: UserName, principal: AdminUser) -> RedirectResponse:
    limits_service.reset(get_context(request), user=username, actor=principal.name)
    return back_to(request, "/limits", f"{username} has the default limits again.")
