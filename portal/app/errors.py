"""Errors as a person can act on them: JSON for the API, a small page for browsers; never a traceback.

* NotAuthenticated: 401 for API clients, a redirect to /login for a browser opening a page.
* Domain errors of the services (portal.app.services.errors): their status, mapped here once.
* A database that does not answer: 503. Kubernetes unavailable: 503.
* Anything unexpected: 500 with a generic message (details only in the log).

Every 422 body is FastAPI's own shape, the ``HTTPValidationError`` of the OpenAPI document:
``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`` (without the submitted input: it may be a
secret). Other errors are ``{"detail": "message"}``.

A page (a path outside /api and the probes) answers with the HTML error page; so does an unknown path
when the client asks for HTML (``Accept: text/html``, as browsers do); API clients get JSON.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from portal.app.auth.guard import NotAuthenticated
from portal.app.services.errors import DomainError, KubeUnavailable

log = logging.getLogger(__name__)
API_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics")


def wants_html(request: Request) -> bool:
    """Pages live outside /api; their errors are pages too. A path no route answers is a page only for a
    client that asks for HTML."""
    path = request.url.path
    if path.startswith(API_PREFIXES) or path == "/api":
        return False
    if request.scope.get("route") is not None:
        return True
    return "text/html" in request.headers.get("accept", "")


def validation_body(errors: list[dict]) -> dict:
    return {"detail": [{"loc": list(e.get("loc") or ()), "msg": str(e.get("msg", "")),
                        "type": str(e.get("type", "value_error"))} for e in errors]}


def error_response(request: Request, status: int, message: str, headers: dict | None = None,
                   loc: tuple = ()) -> Response:
    if wants_html(request):
        templates = request.app.state.templates
        return templates.TemplateResponse(request, "error.html", {"status": status, "message": message},
                                          status_code=status, headers=headers)
    if status == 422:
        return JSONResponse(validation_body([{"loc": loc, "msg": message, "type": "value_error"}]),
                            status_code=422, headers=headers)
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

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException, and the router's 404/405
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        return error_response(request, exc.status, exc.reason, loc=exc.loc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if wants_html(request):
            return error_response(request, 422, _validation_message(exc))
        return JSONResponse(validation_body(list(exc.errors())), status_code=422)

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
