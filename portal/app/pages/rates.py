"""Rates page: the prices in force and their history; admins add a change (from today or a later day)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from portal.app.context import get_context
from portal.app.deps import AdminUser, CurrentUser
from portal.app.pages.common import back_to, render
from portal.app.services.errors import Invalid
from portal.app.services.rates import RateChange, change_rates, rates_view

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=255)]


@router.get("/rates", response_class=HTMLResponse)
def rates_page(request: Request, principal: CurrentUser) -> HTMLResponse:
    return render(request, "rates.html", principal, rates=rates_view(get_context(request)))


@router.post("/rates")
def rates_form(request: Request, principal: AdminUser, gpu_model: Text = "", gpu_hour: Text = "",
               cpu_core_hour: Text = "", memory_gib_hour: Text = "", effective_from: Text = "") -> RedirectResponse:
    raw = {"gpu_model": gpu_model.strip(), "gpu_hour": gpu_hour, "cpu_core_hour": cpu_core_hour,
           "memory_gib_hour": memory_gib_hour, "effective_from": effective_from}
    try:
        change = RateChange.model_validate({k: (v.strip() or None) if k != "gpu_model" else v for k, v in raw.items()})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'rates'}: {e['msg']}" for e in exc.errors())
        raise Invalid(f"rates not saved: {problems}") from None
    change_rates(get_context(request), change, principal.name)
    what = change.gpu_model or "the default"
    return back_to(request, "/rates", f"Saved the rates of {what} from {change.effective_from or 'today'}.")
