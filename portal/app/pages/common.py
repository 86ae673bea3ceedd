"""What every page needs: the template environment, the signed-in user, the CSRF token, a flash."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from portal.app.auth.cookies import FLASH_COOKIE
from portal.app.auth.principal import Principal
from portal.app.context import get_context
from portal.app.pages.cache import csrf_for_render
from portal.app.ranges import duration, local

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
GIB = 1024**3


def gib(value: int | None) -> str:
    return "" if value is None else f"{value / GIB:,.1f} GiB"


def make_templates(zone) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.auto_reload = False  # the templates ship with the code: no stat() of each file per render
    templates.env.filters["local"] = lambda moment: local(moment, zone)
    templates.env.filters["duration"] = duration
    templates.env.filters["gib"] = gib
    templates.env.globals["zone_name"] = zone.key
    return templates


def render(request: Request, template: str, principal: Principal, status_code: int = 200, **values) -> HTMLResponse:
    ctx = get_context(request)
    csrf = csrf_for_render(ctx, principal.session_id)
    flash = ctx.signer.read_flash(request.cookies.get(FLASH_COOKIE))
    response = request.app.state.templates.TemplateResponse(
        request, template, {"me": principal, "csrf": csrf, "flash": flash, **values}, status_code=status_code)
    if flash:
        ctx.signer.clear_flash(response)
    return response


def back_to(request: Request, path: str, message: str) -> RedirectResponse:
    response = RedirectResponse(path, status_code=303)
    get_context(request).signer.set_flash(response, message)
    return response
