"""Sign-in through JupyterHub OAuth (authorization code + PKCE), and sign-out.

/login and /oauth_callback are public by necessity (they are how one signs in); the callback only
ever signs someone in after the hub vouched for them: the state must match the signed state cookie,
and the code must be redeemed at the hub with the portal's client secret.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from starlette.concurrency import run_in_threadpool

from portal.app.auth.cookies import SESSION_COOKIE, STATE_COOKIE
from portal.app.auth.hub import HubUnavailable, pkce_pair
from portal.app.context import get_context
from portal.app.deps import CurrentUser

log = logging.getLogger(__name__)
public = APIRouter(tags=["sign-in"])
router = APIRouter(tags=["sign-in"])
DEFAULT_NEXT = "/pods"


def safe_next(value: str | None) -> str:
    """Only a path on this site: never another host (//evil.example, /\\evil, https://...)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or any(
            ord(c) < 0x20 for c in value):
        return DEFAULT_NEXT
    return value


@public.get("/login", summary="Start signing in with JupyterHub", response_class=RedirectResponse,
            status_code=302)
def login(request: Request, next: str | None = None) -> RedirectResponse:  # noqa: A002 (the usual name)
    ctx = get_context(request)
    if ctx.hub is None:
        raise HTTPException(404, "JupyterHub sign-in is not configured on this portal (use an API token)")
    state = secrets.token_urlsafe(24)
    verifier, challenge = pkce_pair()
    response = RedirectResponse(ctx.hub.authorize_url(state=state, code_challenge=challenge), status_code=302)
    ctx.signer.set_state(response, state=state, next_url=safe_next(next), verifier=verifier)
    return response


@public.get("/oauth_callback", summary="JupyterHub sends the browser back here", response_class=RedirectResponse,
            status_code=303)
async def oauth_callback(request: Request, code: str | None = None, state: str | None = None,
                         error: str | None = None) -> RedirectResponse:
    ctx = get_context(request)
    if ctx.hub is None:
        raise HTTPException(404, "JupyterHub sign-in is not configured on this portal")
    if error:
        ctx.metrics.sign_ins.labels("refused").inc()
        raise HTTPException(403, "JupyterHub did not let you sign in to the portal")
    saved = ctx.signer.read_state(request.cookies.get(STATE_COOKIE))
    if not code or not state or saved is None or not secrets.compare_digest(
            state.encode("utf-8", "replace"), str(saved["state"]).encode()):
        ctx.metrics.sign_ins.labels("bad-state").inc()
        raise HTTPException(400, "this sign-in link is not valid or has expired; start again at /login")
    try:
        token = await ctx.hub.token_for_code(code=code, code_verifier=str(saved["verifier"]))
        model = await ctx.hub.user_for_token(token) if token else None
    except HubUnavailable as exc:
        ctx.metrics.sign_ins.labels("hub-unavailable").inc()
        raise HTTPException(502, f"cannot finish signing in: {exc}") from None
    principal = ctx.hub.principal_from_model(model, via="session")
    if principal is None:
        ctx.metrics.sign_ins.labels("refused").inc()
        raise HTTPException(403, "JupyterHub did not vouch for you as a user of this portal")
    response = RedirectResponse(safe_next(str(saved["next"])), status_code=303)
    cookie = await run_in_threadpool(ctx.sessions.create, name=principal.name, admin=principal.admin)
    ctx.signer.set_session(response, cookie)
    ctx.signer.clear_state(response)
    ctx.metrics.sign_ins.labels("ok").inc()
    log.info("signed in", extra={"user": principal.name, "admin": principal.admin})
    return response


@router.post("/logout", summary="Sign out of the portal", response_class=HTMLResponse)
def logout(request: Request, principal: CurrentUser) -> HTMLResponse:
    """Ends the session here (its server-side row is deleted, so a copy of the cookie is worthless too)."""
    ctx = get_context(request)
    ctx.sessions.revoke(request.cookies.get(SESSION_COOKIE))
    response = request.app.state.templates.TemplateResponse(request, "signed_out.html", {})
    ctx.signer.clear_session(response)
    return response


@router.get("/api/me", tags=["me"], summary="Who you are signed in as")
def me(principal: CurrentUser) -> dict:
    return {"name": principal.name, "admin": principal.admin, "via": principal.via}
