"""The dependencies every protected route goes through.

Identity comes from exactly two places: a bearer token in the Authorization header (a configured API
token, the user's own JupyterHub token checked with the hub, or on the GPU samples route a GPU agent's
ServiceAccount token checked with a TokenReview, never sent to the hub), or the signed session cookie set
by the OAuth callback. No other header or query parameter can name a user. Browser sessions must send
the CSRF token with every unsafe request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyCookie, HTTPBearer
from starlette.concurrency import run_in_threadpool

from portal.app.auth.agents import AgentReviewUnavailable, Refused
from portal.app.auth.cookies import SESSION_COOKIE
from portal.app.auth.hub import HubUnavailable
from portal.app.auth.principal import Principal  # noqa: F401 (the type routes receive)
from portal.app.context import PortalContext, context_dependency

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_AUTH_HEADER = re.compile(r"^(?:bearer|token)\s+(\S+)\s*$", re.IGNORECASE)
_HUB_TOKEN_ALLOWED = "__portal_hub_token_allowed__"
_AGENT_TOKEN_ALLOWED = "__portal_agent_token_allowed__"

# Declared for the OpenAPI document (and so API clients know what to send); parsing is done below.
_bearer_scheme = HTTPBearer(auto_error=False, description="A portal API token or your JupyterHub API token")
_cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Browser session (sign in at /login)")

F = TypeVar("F", bound=Callable)


class NotAuthenticated(Exception):
    """No valid credentials: API clients get 401, browsers are sent to sign in."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def hub_token_allowed(endpoint: F) -> F:
    """Mark the routes the hub's token may call: reading a user's limits and notices."""
    setattr(endpoint, _HUB_TOKEN_ALLOWED, True)
    return endpoint


def agent_token_allowed(endpoint: F) -> F:
    """Mark the one kind of route the GPU agents' tokens may call (sending samples)."""
    setattr(endpoint, _AGENT_TOKEN_ALLOWED, True)
    return endpoint


async def _from_agent_token(ctx: PortalContext, token: str) -> Principal:
    """A GPU agent's ServiceAccount token (PORTAL_AGENT_AUTH=kubernetes): from the review cache, else reviewed
    in the thread pool (the kubernetes client blocks)."""
    reviewer = ctx.agents
    answer = reviewer.cached(token)
    if answer is None:
        try:
            answer = await run_in_threadpool(reviewer.principal, token)
        except AgentReviewUnavailable as exc:
            raise HTTPException(503, f"cannot check the agent's token with Kubernetes: {exc}") from None
    if isinstance(answer, Refused):
        if answer.status == 401:
            raise NotAuthenticated(answer.reason)
        raise HTTPException(answer.status, answer.reason)
    return answer


async def _from_bearer(ctx: PortalContext, header: str, agent_route: bool = False) -> Principal:
    match = _AUTH_HEADER.match(header)
    if not match:
        raise NotAuthenticated("the Authorization header must be 'Bearer <token>'")
    token = match.group(1)
    principal = ctx.tokens.lookup(token)
    if principal is None and agent_route and ctx.agents is not None:
        return await _from_agent_token(ctx, token)
    if principal is None and ctx.hub is not None and ctx.web.accept_hub_tokens:
        try:
            principal = await ctx.hub.principal_for_bearer(token)
        except HubUnavailable as exc:
            raise HTTPException(503, f"cannot check the token with JupyterHub: {exc}") from None
    if principal is None:
        raise NotAuthenticated("the token is not valid")
    return principal


async def _check_csrf(ctx: PortalContext, request: Request, principal: Principal) -> None:
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    if not ctx.signer.csrf_ok(principal.session_id or "", token):
        raise HTTPException(403, "missing or invalid CSRF token: reload the page and try again")


async def authenticate(
    request: Request,
    ctx: Annotated[PortalContext, Depends(context_dependency)],
    _bearer: Annotated[object, Security(_bearer_scheme)] = None,
    _cookie: Annotated[object, Security(_cookie_scheme)] = None,
) -> Principal:
    """The principal of this request, or NotAuthenticated. Runs once per request (cached)."""
    header = request.headers.get("authorization")
    agent_route = getattr(request.scope.get("endpoint"), _AGENT_TOKEN_ALLOWED, False)
    if header is not None:
        principal = await _from_bearer(ctx, header, agent_route)
    else:
        principal = await ctx.sessions.principal(request.cookies.get(SESSION_COOKIE))
        if principal is None:
            raise NotAuthenticated("sign in first")
    if principal.role == "hub" and not getattr(request.scope.get("endpoint"), _HUB_TOKEN_ALLOWED, False):
        raise HTTPException(403, "this token may only read user limits and notices")
    if principal.role == "agent" and not agent_route:
        raise HTTPException(403, "this token may only send GPU samples")
    if principal.via == "session" and request.method not in SAFE_METHODS:
        await _check_csrf(ctx, request, principal)
    request.state.principal = principal
    return principal


async def require_admin(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:  # async: no thread hop
    if not principal.admin:
        raise HTTPException(403, "only JupyterHub admins may do this")
    return principal


CurrentUser = Annotated[Principal, Depends(authenticate)]
AdminUser = Annotated[Principal, Depends(require_admin)]
