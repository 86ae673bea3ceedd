"""Signed cookies: the browser session, the OAuth state of a sign-in in progress, and CSRF tokens.

A session cookie holds only a random session id, signed (HMAC) with the session secret and valid for
``max_age`` seconds; who it belongs to is kept server-side (portal.app.auth.sessions), so signing out
ends it. The hub's access token is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

SESSION_COOKIE = "portal_session"
STATE_COOKIE = "portal_oauth_state"
FLASH_COOKIE = "portal_flash"
STATE_MAX_AGE = 600  # a sign-in must finish within ten minutes


class CookieSigner:
    def __init__(self, secret: str, *, max_age: int, secure: bool) -> None:
        self._secret = secret.encode()
        self._sessions = URLSafeTimedSerializer(secret, salt="portal-session")
        self._states = URLSafeTimedSerializer(secret, salt="portal-oauth-state")
        self._flashes = URLSafeTimedSerializer(secret, salt="portal-flash")
        self.max_age, self.secure = max_age, secure

    # -- sessions --------------------------------------------------------------------------------
    @staticmethod
    def new_session_id() -> str:
        return secrets.token_urlsafe(32)

    def session_value(self, session_id: str) -> str:
        return self._sessions.dumps({"s": session_id})

    def read_session(self, value: str | None) -> str | None:
        """The session id of a validly signed, unexpired cookie (whether it is still signed in is the
        session store's to say)."""
        if not value:
            return None
        try:
            data = self._sessions.loads(value, max_age=self.max_age)
            session_id = data["s"]
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        return session_id if isinstance(session_id, str) and session_id else None

    def set_session(self, response: Response, value: str) -> None:
        response.set_cookie(SESSION_COOKIE, value, max_age=self.max_age,
                            httponly=True, secure=self.secure, samesite="lax", path="/")

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, secure=self.secure, samesite="lax")

    # -- OAuth state -----------------------------------------------------------------------------
    def set_state(self, response: Response, *, state: str, next_url: str, verifier: str) -> None:
        value = self._states.dumps({"state": state, "next": next_url, "verifier": verifier})
        response.set_cookie(STATE_COOKIE, value, max_age=STATE_MAX_AGE, httponly=True, secure=self.secure,
                            samesite="lax", path="/oauth_callback")

    def read_state(self, value: str | None) -> dict | None:
        if not value:
            return None
        try:
            data = self._states.loads(value, max_age=STATE_MAX_AGE)
            return data if isinstance(data, dict) and {"state", "next", "verifier"} <= set(data) else None
        except (BadSignature, TypeError, ValueError):
            return None

    def clear_state(self, response: Response) -> None:
        response.delete_cookie(STATE_COOKIE, path="/oauth_callback", httponly=True, secure=self.secure,
                               samesite="lax")

    # -- a one-time message for the page shown after a form was posted (signed: no reflected text) ----
    def set_flash(self, response: Response, message: str) -> None:
        response.set_cookie(FLASH_COOKIE, self._flashes.dumps(message[:500]), max_age=60, httponly=True,
                            secure=self.secure, samesite="lax", path="/")

    def read_flash(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            message = self._flashes.loads(value, max_age=60)
        except (BadSignature, TypeError, ValueError):
            return None
        return message if isinstance(message, str) else None

    def clear_flash(self, response: Response) -> None:
        response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, secure=self.secure, samesite="lax")

    # -- CSRF: a token bound to the session id, sent back in forms or the X-CSRF-Token header --------
    def csrf_token(self, session_id: str) -> str:
        return hmac.new(self._secret, b"csrf\0" + session_id.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session_id: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session_id).encode(),
                                                   token.encode("utf-8", "replace"))
