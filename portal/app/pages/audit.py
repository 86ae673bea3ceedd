"""Audit log page (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.app.context import get_context
from portal.app.deps import AdminUser
from portal.app.pages.common import render
from portal.app.services import audit

router = APIRouter(include_in_schema=False)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, principal: AdminUser) -> HTMLResponse:
    with get_context(request).engine.connect() as connection:
        rows = audit.recent(connection, limit=200)
    return render(request, "audit.html", principal, rows=rows)
