"""Rendered dashboard pages, kept for as long as the data they show (``PORTAL_VIEW_CACHE_SECONDS``).

Rendering a 70-100 KB page costs about 10 ms of CPU; under load the same page is asked for again and again.
A page is cached per viewer: the key holds the principal's name, admin flag, kind (session or token) and
role, the path and the validated query parameters, so a user is only ever served a page rendered for
that same identity (a demoted admin gets a new key). The one per-session part of a page, the CSRF token,
is rendered as a random marker and replaced with the requesting session's own token on every answer.
Pages whose content does not depend on which admin asks (the overview, billing, a named user's page:
``admins_share=True``) are rendered once for all signed-in admins: the admin's name is rendered as a marker
too and replaced (HTML-escaped) with the requesting admin's name. Admins may see every page anyway; a
non-admin, a token or a demoted admin never shares such an entry (the admin flag and kind are in the key).
Not cached: pages with a flash message, anything but a plain 200, and every page while
``PORTAL_VIEW_CACHE_SECONDS`` is 0. An entry never outlives the cached data it was rendered from, and a
successful change (POST/PUT/PATCH/DELETE by a signed-in user or token other than a GPU agent's, status below
400) clears both caches of this process (``InvalidateOnChangeMiddleware``): an admin's edit shows on the next
page load. So does every committed write to the data pages are built from (``services.invalidation``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

from fastapi.responses import HTMLResponse
from markupsafe import escape
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal.app.auth.cookies import FLASH_COOKIE
from portal.app.context import PortalContext, get_context
from portal.app.services.view_cache import tracking

F = TypeVar("F", bound=Callable)
PAGE_CACHE_ENTRIES = 512  # at ~100 KB a page, at most ~50 MB
CSRF_MARKER = "csrf-marker-" + secrets.token_hex(16)  # unguessable: no user data can contain it
_MARKER_BYTES = CSRF_MARKER.encode()
NAME_MARKER = "name-marker-" + secrets.token_hex(16)
_NAME_BYTES = NAME_MARKER.encode()
_rendering_for_cache: ContextVar[bool] = ContextVar("rendering_for_cache", default=False)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_for_render(ctx: PortalContext, session_id: str | None) -> str:
    """The CSRF token a page renders: the session's own, or the marker when the page is rendered to be cached."""
    if not session_id:
        return ""
    return CSRF_MARKER if _rendering_for_cache.get() else ctx.signer.csrf_token(session_id)


class _Page:
    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body


def cached_page(endpoint: F | None = None, *, admins_share: bool = False):
    """Serve a (sync) page endpoint's 200 answers from the page cache; the endpoint takes ``request`` and
    ``principal`` by those names. ``admins_share``: what the endpoint shows an admin does not depend on the
    admin's name (it must not read ``principal.name`` for admins), so signed-in admins share one entry."""
    if endpoint is None:
        return lambda function: _cached(function, admins_share)
    return _cached(endpoint, admins_share)


def _key(endpoint, request, principal, kwargs, shared: bool) -> tuple:
    params = tuple(sorted((name, value) for name, value in kwargs.items() if name not in ("request", "principal")))
    return (endpoint.__module__, endpoint.__qualname__, request.url.path, None if shared else principal.name,
            principal.admin, principal.via, principal.role, params)


def _cached(endpoint: F, admins_share: bool) -> F:
    def share(principal) -> bool:
        return admins_share and principal.admin and principal.via == "session" and principal.role == "admin"

    @functools.wraps(endpoint)
    async def wrapper(*args, **kwargs):
        """A cached page is answered here, on the event loop; anything else renders in the thread pool, a
        page to be cached in a slot of the render queue (``render_queue``)."""
        request, principal = kwargs["request"], kwargs["principal"]
        ctx = get_context(request)
        if ctx.pages.ttl <= 0 or FLASH_COOKIE in request.cookies:
            return await run_in_threadpool(rendered, *args, **kwargs)
        shared = share(principal)
        key = _key(endpoint, request, principal, kwargs, shared)
        if principal.via == "session":  # the same request from the same identity may skip routing next time
            ctx.page_index.note(request.scope, principal, key, shared)
        page = ctx.pages.peek(key)
        if not isinstance(page, _Page) and await ctx.renders.wait_for(key):
            page = ctx.pages.peek(key)  # rendered meanwhile by the request we waited for
        if isinstance(page, _Page):
            return HTMLResponse(_personal(ctx, page.body, principal, shared))
        return await ctx.renders.render(key, lambda: run_in_threadpool(rendered, *args, **kwargs))

    def rendered(*args, **kwargs):
        request, principal = kwargs["request"], kwargs["principal"]
        ctx = get_context(request)
        if ctx.pages.ttl <= 0 or FLASH_COOKIE in request.cookies:
            return endpoint(*args, **kwargs)
        shared = share(principal)
        key = _key(endpoint, request, principal, kwargs, shared)
        if shared:  # rendered for "some admin": the name is a marker, replaced below
            kwargs = kwargs | {"principal": dataclasses.replace(principal, name=NAME_MARKER)}
        used = {"expires": math.inf}

        def make() -> _Page | HTMLResponse:
            with tracking() as tracker:
                flag = _rendering_for_cache.set(True)
                try:
                    response = endpoint(*args, **kwargs)
                finally:
                    _rendering_for_cache.reset(flag)
            used["expires"] = tracker.expires
            if (not isinstance(response, HTMLResponse) or response.status_code != 200
                    or "set-cookie" in response.headers):
                return response
            return _Page(bytes(response.body))

        page = ctx.pages.get(key, make, expires=lambda: used["expires"], keep=lambda value: isinstance(value, _Page))
        if not isinstance(page, _Page):  # not cacheable: answered as rendered (with the marker replaced)
            response = page
            body = getattr(response, "body", b"")
            if (principal.session_id and _MARKER_BYTES in body) or (shared and _NAME_BYTES in body):
                response.body = _personal(ctx, body, principal, shared)
                response.headers["content-length"] = str(len(response.body))
            return response
        return HTMLResponse(_personal(ctx, page.body, principal, shared))

    return wrapper  # type: ignore[return-value]


def cached_body(ctx: PortalContext, key, principal, shared: bool) -> bytes | None:
    """The cached page of ``key`` for this viewer, or None when it is not (or no longer) in the cache."""
    page = ctx.pages.peek(key)
    return _personal(ctx, page.body, principal, shared) if isinstance(page, _Page) else None


def _personal(ctx: PortalContext, body: bytes, principal, shared: bool) -> bytes:
    """The page for this viewer: their session's CSRF token, and (shared pages) their name."""
    if principal.session_id:
        body = body.replace(_MARKER_BYTES, ctx.signer.csrf_token(principal.session_id).encode())
    if shared:
        body = body.replace(_NAME_BYTES, str(escape(principal.name)).encode())
    return body


class InvalidateOnChangeMiddleware:
    """After a successful change by an authenticated caller, forget every cached view and page of this process.
    Not after GPU samples (agent tokens): every node sends a batch every few seconds, which would keep the
    caches empty; utilisation is shown at most the view-cache period old, like every measurement."""

    def __init__(self, app: ASGIApp, ctx: PortalContext) -> None:
        self.app, self.ctx = app, ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            principal = (scope.get("state") or {}).get("principal")
            if (message["type"] == "http.response.start" and message["status"] < 400 and principal is not None
                    and principal.role != "agent"):
                self.ctx.views.clear()
                self.ctx.pages.clear()
            await send(message)

        await self.app(scope, receive, send_wrapper)
