"""Cached pages answered before routing: a signed-in browser asking again for a page it was answered
from the page cache gets it without FastAPI's routing and dependency solving (two thirds of the work of
such an answer).

Only what the full path already answered is answered here. Each time a cached page endpoint serves a
browser session (``portal.app.pages.cache``), it notes the request as it came (path and raw query string)
with who asked (name, admin flag, role) and the page key it used. A later request is answered here only
when it is the same request from a principal with the same identity, now: the session cookie is checked
by the session store exactly as ``authenticate`` does (signature, expiry, sign-out, the hub's re-check),
and the page must still be in the page cache. Anything else (no note, a token, a flash message, another
method, a page since expired or cleared) goes the full way. The guard that let the first request through
(admin only, a user's own page) held for that identity and that request, so it holds again.
"""

from __future__ import annotations

from collections.abc import Hashable

from starlette.types import ASGIApp, Receive, Scope, Send

from portal.app.auth.cookies import FLASH_COOKIE, SESSION_COOKIE

MAX_NOTES = 8192


class PageIndex:
    """(path, query, name, admin, role) -> (page key, shared, route) of the pages the full path answered."""

    def __init__(self) -> None:
        self._notes: dict[tuple, tuple[Hashable, bool, object]] = {}

    @staticmethod
    def request_key(scope: Scope, principal) -> tuple:
        return (scope["path"], scope.get("query_string", b""), principal.name, principal.admin, principal.role)

    def note(self, scope: Scope, principal, key: Hashable, shared: bool) -> None:
        if len(self._notes) >= MAX_NOTES:
            self._notes = {}
        self._notes[self.request_key(scope, principal)] = (key, shared, scope.get("route"))

    def find(self, scope: Scope, principal) -> tuple[Hashable, bool, object] | None:
        return self._notes.get(self.request_key(scope, principal))


def _cookies(scope: Scope) -> dict[str, str] | None:
    """The request's cookies (None when there is an Authorization header: tokens take the full path)."""
    from starlette.requests import cookie_parser

    cookie = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            return None
        if name == b"cookie":
            cookie = value.decode("latin-1")
    return cookie_parser(cookie) if cookie else None


class CachedPageMiddleware:
    """Answers a cached page to the browser session it was answered to before (see the module's note)."""

    def __init__(self, app: ASGIApp, ctx) -> None:
        self.app, self.ctx = app, ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # with the session cache off, checking the cookie here and again on the full path would read it twice
        if (scope["type"] == "http" and scope["method"] == "GET" and self.ctx.pages.ttl > 0
                and self.ctx.sessions.cache_seconds > 0):
            body = await self._cached(scope)
            if body is not None:
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-length", str(len(body)).encode()), (b"content-type", b"text/html; charset=utf-8")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    async def _cached(self, scope: Scope) -> bytes | None:
        from portal.app.pages.cache import cached_body

        cookies = _cookies(scope)
        if not cookies or FLASH_COOKIE in cookies or SESSION_COOKIE not in cookies:
            return None
        ctx = self.ctx
        try:
            principal = await ctx.sessions.principal(cookies[SESSION_COOKIE])
        except Exception:  # e.g. the database is down: the full path answers it as it answers every error
            return None
        if principal is None:
            return None
        found = ctx.page_index.find(scope, principal)
        if found is None:
            return None
        key, shared, route = found
        body = cached_body(ctx, key, principal, shared)
        if body is not None:
            scope.setdefault("state", {})["principal"] = principal  # for the access log, as authenticate does
            scope["route"] = route  # for the metrics' route template
        return body
