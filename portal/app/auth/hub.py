"""The JupyterHub endpoints the portal uses as a hub service (the same calls as jupyterhub.services.auth).

  browser -> {hub}/hub/api/oauth2/authorize?client_id&redirect_uri&response_type=code&state&code_challenge
  portal  -> POST {api}/oauth2/token (client_id, client_secret, grant_type, code, redirect_uri, code_verifier)
  portal  -> GET  {api}/user  with "Authorization: token <access token>"  -> the user model
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from urllib.parse import quote, urlencode

import httpx

from portal.app.auth.principal import Principal
from portal.app.auth.tokens import digest
from portal.app.settings import WebSettings

CACHE_SIZE = 1024


class HubUnavailable(Exception):
    """The hub did not answer, or answered with an error it should not give."""


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636."""
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


class HubClient:
    def __init__(self, settings: WebSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._transport = transport
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self.cache_seconds = settings.hub_check_seconds  # a revoked token works at most this long
        self.access_scopes = {"access:services", f"access:services!service={settings.service_name}"}

    def authorize_url(self, *, state: str, code_challenge: str) -> str:
        query = urlencode({
            "client_id": self.settings.oauth_client_id, "redirect_uri": self.settings.oauth_callback_url,
            "response_type": "code", "state": state, "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        })
        return f"{self.settings.hub_authorize_url}?{query}"

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.settings.hub_request_timeout_seconds, transport=self._transport,
                                 follow_redirects=False)

    async def token_for_code(self, *, code: str, code_verifier: str) -> str | None:
        """The access token for an OAuth code; None when the hub refuses the code."""
        secret = self.settings.oauth_client_secret
        form = {"client_id": self.settings.oauth_client_id,
                "client_secret": secret.get_secret_value() if secret else "",
                "grant_type": "authorization_code", "code": code, "redirect_uri": self.settings.oauth_callback_url,
                "code_verifier": code_verifier}
        try:
            async with self._client() as client:
                reply = await client.post(f"{self.settings.hub_api_url}/oauth2/token", data=form)
        except httpx.HTTPError as exc:
            raise HubUnavailable(f"JupyterHub did not answer the token request ({type(exc).__name__})") from None
        if reply.status_code in (400, 401, 403):
            return None
        if reply.status_code != 200:
            raise HubUnavailable(f"JupyterHub answered the token request with HTTP {reply.status_code}")
        token = reply.json().get("access_token")
        return token if isinstance(token, str) and token else None

    async def user_for_token(self, token: str) -> dict | None:
        """The hub's model of the token's owner; None when the hub does not accept the token."""
        try:
            async with self._client() as client:
                reply = await client.get(f"{self.settings.hub_api_url}/user",
                                         headers={"Authorization": f"token {token}"})
        except httpx.HTTPError as exc:
            raise HubUnavailable(f"JupyterHub did not answer ({type(exc).__name__})") from None
        if reply.status_code in (401, 403, 404):
            return None
        if reply.status_code != 200:
            raise HubUnavailable(f"JupyterHub answered with HTTP {reply.status_code}")
        model = reply.json()
        return model if isinstance(model, dict) else None

    def principal_from_model(self, model: dict | None, *, via: str) -> Principal | None:
        """A user who may use this service (a user, not a service, holding an access scope)."""
        if not model or model.get("kind", "user") != "user" or not isinstance(model.get("name"), str):
            return None
        if not self.access_scopes & set(model.get("scopes") or []):
            return None
        admin = model.get("admin") is True
        return Principal(name=model["name"], admin=admin, via=via, role="admin" if admin else "user")

    async def principal_for_bearer(self, token: str) -> Principal | None:
        """A user's own hub API token used as a bearer token (cached briefly, by digest only)."""
        key, now = digest(token), time.monotonic()
        cached = self._cache.get(key)
        if cached and cached[0] > now:
            return cached[1]
        principal = self.principal_from_model(await self.user_for_token(token), via="hub-token")
        if len(self._cache) >= CACHE_SIZE:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
        self._cache[key] = (now + self.cache_seconds, principal)
        return principal

    async def user_by_name(self, name: str) -> dict | None:
        """The hub's model of a user (name and admin flag), read with the portal's own service token
        (its role grants read:users:name); None when the hub has no such user."""
        secret = self.settings.oauth_client_secret
        headers = {"Authorization": f"token {secret.get_secret_value() if secret else ''}"}
        try:
            async with self._client() as client:
                reply = await client.get(f"{self.settings.hub_api_url}/users/{quote(name, safe='')}", headers=headers)
        except httpx.HTTPError as exc:
            raise HubUnavailable(f"JupyterHub did not answer ({type(exc).__name__})") from None
        if reply.status_code == 404:
            return None
        if reply.status_code != 200:
            raise HubUnavailable(f"JupyterHub answered a user lookup with HTTP {reply.status_code} (does the "
                                 "portal service have the read:users:name scope?)")
        model = reply.json()
        return model if isinstance(model, dict) and model.get("name") == name else None
