"""Cookie SSO (replaces the old `ubilink` mode): the hub trusts a session cookie of another site.

The browser sends that site's session cookie to the hub (its domain must cover the hub's host). At
/hub/login the hub asks `auth_me_url` server-side, forwarding ONLY that cookie, and takes the username from
the JSON answer. Without a valid cookie the user goes to `login_url`, an absolute URL carrying a return
parameter back to the hub's login, which then completes the sign-in. An SSO outage is a 503 page, not a
redirect, so an outage cannot turn into a redirect loop.
"""

import json
from urllib.parse import urlencode

from jupyterhub.auth import Authenticator
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from traitlets import Bool, Float, Unicode, default


class SSOSessionInvalid(Exception):
    """The SSO says the cookie is no (longer a) valid session."""


class SSOUnavailable(Exception):
    """The SSO gave no usable answer: down, slow, 5xx, or an answer without the username."""


def cookie_value(cookie_header: str, name: str) -> str | None:
    """The raw value of cookie `name` in a Cookie header, byte for byte as the browser sent it."""
    for part in (cookie_header or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value
    return None


def username_from(answer, field: str) -> str | None:
    """Follow a dotted path (`user.login`) into the SSO's JSON answer."""
    for key in field.split("."):
        if not isinstance(answer, dict):
            return None
        answer = answer.get(key)
    return answer if isinstance(answer, str) and answer else None


class CookieSSOLoginHandler(BaseHandler):
    """/hub/login: sign in from the SSO cookie, or send the browser to the SSO login page."""

    async def get(self):
        auth = self.authenticator
        if cookie_value(self.request.headers.get("Cookie", ""), auth.cookie_name) is None:
            self.log.info("cookie-sso: no %s cookie; sending the browser to the SSO login", auth.cookie_name)
            return self.redirect(auth.sso_login_redirect(self))
        try:
            user = await self.login_user()
        except SSOSessionInvalid:
            return self.redirect(auth.sso_login_redirect(self))
        except SSOUnavailable:
            raise web.HTTPError(503, "The sign-in service is not answering. Try again in a minute.") from None
        if user is None:
            raise web.HTTPError(403, "Your account is not allowed to use this hub.")
        self.redirect(self.get_next_url(user))


class CookieSSOAuthenticator(Authenticator):
    cookie_name = Unicode(config=True, help="Name of the SSO session cookie to forward.")
    auth_me_url = Unicode(config=True, help="Absolute URL that answers the cookie's user as JSON (200), or 401/403.")
    login_url = Unicode(config=True, help="Absolute URL of the SSO login page.")
    next_parameter = Unicode("next", config=True, help="Query parameter of login_url that holds the return URL.")
    username_field = Unicode("username", config=True, help="Dotted path of the username in auth_me's JSON.")
    timeout = Float(5.0, config=True, help="Seconds to wait for auth_me (connect and whole request).")
    validate_cert = Bool(True, config=True, help="Verify auth_me's TLS certificate.")
    ca_certs = Unicode("", config=True, help="CA bundle file for auth_me's certificate; empty: system CAs.")
    hub_public_url = Unicode(
        "", config=True, help="Absolute public URL of the hub (https://hub.example.com); empty: from the request."
    )
    login_service = Unicode("SSO", config=True)

    @default("allow_all")
    def _allow_all_default(self):
        # The SSO decides who has a session; allowed_users, when set, narrows that down.
        return not self.allowed_users

    def get_handlers(self, app):
        return [(r"/login", CookieSSOLoginHandler)]

    def _public_base(self, handler) -> str:
        if self.hub_public_url:
            return self.hub_public_url.rstrip("/")
        return f"{handler.request.protocol}://{handler.request.host}"

    def sso_login_redirect(self, handler) -> str:
        """login_url?<next_parameter>=<absolute hub login URL that keeps the hub's own next>."""
        back = self._public_base(handler) + url_path_join(handler.hub.base_url, "login")
        next_url = handler.get_argument("next", "")
        # Only a local path travels; the hub validates it again when the browser comes back.
        if next_url.startswith("/") and not next_url.startswith("//") and "\\" not in next_url:
            back += "?" + urlencode({"next": next_url})
        sep = "&" if "?" in self.login_url else "?"
        return f"{self.login_url}{sep}{urlencode({self.next_parameter: back})}"

    async def authenticate(self, handler, data=None):
        value = cookie_value(handler.request.headers.get("Cookie", ""), self.cookie_name)
        if value is None:
            raise SSOSessionInvalid("no SSO cookie")
        request = HTTPRequest(
            self.auth_me_url,
            headers={"Cookie": f"{self.cookie_name}={value}", "Accept": "application/json"},
            connect_timeout=self.timeout,
            request_timeout=self.timeout,
            follow_redirects=False,
            validate_cert=self.validate_cert,
            ca_certs=self.ca_certs or None,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except Exception as exc:
            self.log.error("cookie-sso: %s unreachable: %s", self.auth_me_url, type(exc).__name__)
            raise SSOUnavailable() from None
        if response.code in (401, 403) or 300 <= response.code < 400:
            self.log.info("cookie-sso: %s rejected the session (HTTP %s)", self.auth_me_url, response.code)
            raise SSOSessionInvalid()
        if response.code != 200:
            detail = "timed out" if response.code == 599 else f"HTTP {response.code}"
            self.log.error("cookie-sso: %s gave no answer (%s)", self.auth_me_url, detail)
            raise SSOUnavailable()
        try:
            username = username_from(json.loads(response.body), self.username_field)
        except ValueError:
            username = None
        if not username:
            self.log.error("cookie-sso: %s answered without a string at %r", self.auth_me_url, self.username_field)
            raise SSOUnavailable()
        self.log.info("cookie-sso: session belongs to %s", username)
        return {"name": username}
