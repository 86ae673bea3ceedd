"""Errors as a person can act on them: JSON for the API, a small page for browsers; never a traceback.

* NotAuthenticated: 401 for API clients, a redirect to /login for a browser opening a page.
* A database that does not answer: 503. Kubernetes unavailable: 503.
* Anything unexpected: 500 with a generic message (details only in the log).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response

from portal.app.auth.guard import NotAuthenticated
from portal.app.context import KubeUnavailable

log = logging.getLogger(__name__)


def wants_html(request: Request) -> bool:
    """Pages live outside /api; their errors are pages too."""
    path = request.url.path
    return not (path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics"))


def error_response(request: Request, status: int, message: str, headers: dict | None = None) -> Response:
    if wants_html(request):
        templates = request.app.state.templates
        return templates.TemplateResponse(request, "error.html", {"status": status, "message": message},
                                          status_code=status, headers=headers)
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotAuthenticated)
    async def _not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if wants_html(request) and request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return error_response(request, 401, f"authentication required: {exc.reason}",
                              headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if wants_html(request):
            return error_response(request, 422, _validation_message(exc))
        return JSONResponse({"detail": _validation_message(exc), "errors": _plain_errors(exc)}, status_code=422)

    @app.exception_handler(KubeUnavailable)
    async def _kube(request: Request, exc: KubeUnavailable) -> Response:
        return error_response(request, 503, f"Kubernetes API unavailable: {exc}")

    @app.exception_handler(sa.exc.DataError)
    async def _unstorable(request: Request, exc: Exception) -> Response:
        # a value the database cannot hold got past validation: the request is at fault, not the server
        log.warning("database refused a value: %s", type(getattr(exc, "orig", exc)).__name__)
        return error_response(request, 422, "a value in the request cannot be stored or searched for")

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.InterfaceError)
    async def _database(request: Request, exc: Exception) -> Response:
        log.warning("database unavailable: %s", type(getattr(exc, "orig", exc)).__name__)
        return error_response(request, 503, "the portal database is not available; try again shortly")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal error (details are in the portal log)")


def _plain_errors(exc: RequestValidationError) -> list[dict]:
    """Validation errors without the submitted input (it may be a secret)."""
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()]
