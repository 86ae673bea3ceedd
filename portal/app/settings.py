"""Settings of the web application (sign-in, tokens, storage view, server), validated at start.

Read from ``PORTAL_*`` environment variables; the JupyterHub service variables (``JUPYTERHUB_API_URL``,
``JUPYTERHUB_CLIENT_ID``, ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_OAUTH_CALLBACK_URL``,
``JUPYTERHUB_SERVICE_NAME``) are accepted too, so a hub-managed service needs no extra setup.
Secrets may come from files (``*_FILE``, e.g. a mounted Kubernetes secret). The engine's settings
(database, collector, rates) live in :mod:`portal.settings`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from portal.settings import PortalSettings, SettingsError, http_url, load_settings

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_SERVICE_ACCOUNT = re.compile(rf"^{_DNS_LABEL}:{_DNS_LABEL}(\.{_DNS_LABEL})*$")
MIN_SECRET_LENGTH = 32


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class TokenSpec(BaseModel):
    """One API token, stored as the SHA-256 of the token (hex); the token itself is never configured."""

    # admin: the whole API as an admin; hub: only GET /api/limits/{user}; agent: only POST /api/gpu/samples
    role: Literal["admin", "hub", "agent"]
    sha256: str

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        value = value.strip().lower()
        if not _HEX64.match(value):
            raise ValueError("sha256 must be 64 hex digits (python -m portal hash-token prints it)")
        return value


# Environment names of each field, for messages (aliases first, as a person would set them).
ENV_NAMES = {
    "hub_api_url": "PORTAL_HUB_API_URL (or JUPYTERHUB_API_URL)",
    "oauth_client_id": "PORTAL_OAUTH_CLIENT_ID (or JUPYTERHUB_CLIENT_ID)",
    "oauth_client_secret": "PORTAL_OAUTH_CLIENT_SECRET (or JUPYTERHUB_API_TOKEN)",
    "oauth_callback_url": "PORTAL_OAUTH_CALLBACK_URL (or JUPYTERHUB_OAUTH_CALLBACK_URL)",
    "service_name": "PORTAL_SERVICE_NAME (or JUPYTERHUB_SERVICE_NAME)",
}


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", env_ignore_empty=True, extra="ignore",
                                      populate_by_name=True)

    host: str = "0.0.0.0"
    port: int = Field(default=29781, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    auto_migrate: bool = True  # bring the database schema up to date at start
    collector_enabled: bool = True

    # Sign-in through JupyterHub OAuth: the portal is a JupyterHub service.
    hub_api_url: str | None = Field(default=None, validation_alias=_env("PORTAL_HUB_API_URL", "JUPYTERHUB_API_URL"))
    hub_public_url: str | None = None  # the hub as browsers reach it; default: hub_api_url without /hub/api
    oauth_client_id: str = Field(default="service-portal",
                                 validation_alias=_env("PORTAL_OAUTH_CLIENT_ID", "JUPYTERHUB_CLIENT_ID"))
    oauth_client_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("PORTAL_OAUTH_CLIENT_SECRET", "JUPYTERHUB_API_TOKEN"))
    oauth_client_secret_file: Path | None = None
    oauth_callback_url: str | None = Field(
        default=None, validation_alias=_env("PORTAL_OAUTH_CALLBACK_URL", "JUPYTERHUB_OAUTH_CALLBACK_URL"))
    service_name: str = Field(default="portal", validation_alias=_env("PORTAL_SERVICE_NAME",
                                                                      "JUPYTERHUB_SERVICE_NAME"))
    accept_hub_tokens: bool = True  # a user's own JupyterHub API token works as a bearer token here
    hub_request_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # How long the hub's word is trusted: a hub token's owner (a revoked token works at most this long),
    # and a browser session's user and admin flag (a demoted admin is an admin at most this long).
    hub_check_seconds: float = Field(default=60.0, ge=0, le=60)
    # A browser session read from the database is reused in this process for this long (0: read it on every
    # request). Signing out and the hub's answers take effect at once in this process; only a session row
    # deleted outside it (another replica, by hand) is still honoured for at most this long.
    session_cache_seconds: float = Field(default=5.0, ge=0, le=30)

    # Browser sessions: a signed cookie; the secret must be shared by all replicas.
    session_secret: SecretStr | None = None
    session_secret_file: Path | None = None
    session_max_age_seconds: int = Field(default=8 * 3600, ge=60, le=7 * 86400)
    cookie_secure: bool | None = None  # None: secure when the callback URL is https

    # API tokens (hashed): JSON {"name": {"role": "admin"|"hub"|"agent", "sha256": "..."}}, inline or in a file.
    api_tokens: dict[str, TokenSpec] = Field(default_factory=dict)
    api_tokens_file: Path | None = None

    # How GPU agents authenticate (POST /api/gpu/samples). "api-token": agent-role PORTAL_API_TOKENS, bound to
    # no node (a trial without Kubernetes). "kubernetes": each agent's projected ServiceAccount token, checked
    # with a TokenReview for this audience and ServiceAccount ("<namespace>:<name>"), may send samples only
    # for the node it is bound to; agent-role API tokens are then refused. A review is kept this long.
    agent_auth: Literal["api-token", "kubernetes"] = "api-token"
    agent_audience: str = Field(default="jhub-portal", min_length=1, max_length=253)
    agent_service_account: str | None = None
    agent_token_cache_seconds: float = Field(default=60.0, ge=0, le=300)

    # Dashboard pages reuse what they computed for this long (the overview, billing reports, a user's page)
    view_cache_seconds: float = Field(default=30.0, ge=0, le=3600)

    # Storage view: the per-user directories (shared-hostpath base, mounted into the portal pod).
    storage_base_path: Path | None = None
    storage_auto_remove_idle_days: int | None = Field(default=None, ge=1)  # None: never automatic
    storage_min_idle_days: int = Field(default=30, ge=1, le=36500)  # no removal, by hand or not, sooner
    storage_walk_max_entries: int = Field(default=200_000, ge=1)  # per directory; beyond it, last use unknown
    storage_walk_budget_entries: int = Field(default=1_000_000, ge=1)  # per listing request, all directories
    storage_scan_cache_seconds: float = Field(default=300.0, ge=0)  # how long a listing reuses a measurement

    @field_validator("hub_api_url", "hub_public_url", "oauth_callback_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return http_url(value)

    @field_validator("oauth_callback_url")
    @classmethod
    def _callback_path(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).path != "/oauth_callback":
            raise ValueError(f"{value!r} must end in /oauth_callback (the portal's callback route)")
        return value

    @field_validator("api_tokens")
    @classmethod
    def _token_names(cls, value: dict[str, TokenSpec]) -> dict[str, TokenSpec]:
        bad = sorted(name for name in value if not _TOKEN_NAME.match(name))
        if bad:
            raise ValueError(f"token names must be letters, digits, '_', '.', '-': {bad}")
        return dict(sorted(value.items()))

    @field_validator("storage_base_path")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError(f"{str(value)!r} must be an absolute path")
        return value

    @model_validator(mode="after")
    def _load_secret_files(self) -> WebSettings:
        for field in ("oauth_client_secret", "session_secret"):
            path = getattr(self, f"{field}_file")
            if path is None:
                continue
            if getattr(self, field) is not None:
                env = f"PORTAL_{field.upper()}"
                raise ValueError(f"set {env} or {env}_FILE, not both")
            setattr(self, field, SecretStr(_read_secret_file(path, field)))
        if self.api_tokens_file is not None:
            merged = dict(self.api_tokens)
            for name, spec in _read_token_file(self.api_tokens_file).items():
                if name in merged:
                    raise ValueError(f"API token {name!r} is set both in PORTAL_API_TOKENS and PORTAL_API_TOKENS_FILE")
                merged[name] = spec
            self.api_tokens = dict(sorted(merged.items()))
        return self

    @model_validator(mode="after")
    def _sign_in_is_complete(self) -> WebSettings:
        oauth = {"hub_api_url": self.hub_api_url, "oauth_client_secret": self.oauth_client_secret,
                 "oauth_callback_url": self.oauth_callback_url}
        missing = sorted(ENV_NAMES[name] for name, value in oauth.items() if value is None)
        if missing and len(missing) < len(oauth):
            raise ValueError("JupyterHub sign-in is half configured; also set " + ", ".join(missing))
        if missing and not self.api_tokens:
            raise ValueError("nobody can sign in: configure JupyterHub OAuth (PORTAL_HUB_API_URL, "
                             "PORTAL_OAUTH_CLIENT_SECRET, PORTAL_OAUTH_CALLBACK_URL) or PORTAL_API_TOKENS")
        auto = self.storage_auto_remove_idle_days
        if auto is not None and auto < self.storage_min_idle_days:
            raise ValueError(f"PORTAL_STORAGE_AUTO_REMOVE_IDLE_DAYS ({auto}) is below PORTAL_STORAGE_MIN_IDLE_DAYS "
                             f"({self.storage_min_idle_days})")
        if self.agent_auth == "kubernetes":
            account = self.agent_service_account
            if account is None:
                raise ValueError("PORTAL_AGENT_AUTH=kubernetes needs PORTAL_AGENT_SERVICE_ACCOUNT "
                                 "(<namespace>:<name> of the GPU agents' ServiceAccount)")
            if not _SERVICE_ACCOUNT.match(account):
                raise ValueError(f"PORTAL_AGENT_SERVICE_ACCOUNT {account!r} must be <namespace>:<name>")
            unbound = sorted(name for name, spec in self.api_tokens.items() if spec.role == "agent")
            if unbound:
                raise ValueError(f"agent-role API tokens {unbound} are bound to no node; with PORTAL_AGENT_AUTH="
                                 "kubernetes the agents use their ServiceAccount tokens: remove them")
        if self.session_secret is not None and len(self.session_secret.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"PORTAL_SESSION_SECRET must be at least {MIN_SECRET_LENGTH} characters")
        return self

    @property
    def oauth_enabled(self) -> bool:
        return self.hub_api_url is not None

    @property
    def hub_authorize_url(self) -> str:
        """Where browsers are sent to sign in (the hub's public OAuth authorize endpoint)."""
        base = self.hub_public_url or re.sub(r"/hub/api$", "", self.hub_api_url or "")
        return f"{base}/hub/api/oauth2/authorize"

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return (self.oauth_callback_url or "").startswith("https://")


def _read_secret_file(path: Path, field: str) -> str:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read PORTAL_{field.upper()}_FILE {str(path)!r}: {exc.strerror}") from None
    if not value:
        raise ValueError(f"PORTAL_{field.upper()}_FILE {str(path)!r} is empty")
    return value


def _read_token_file(path: Path) -> dict[str, TokenSpec]:
    import json

    raw = _read_secret_file(path, "api_tokens")
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        specs = {str(name): TokenSpec.model_validate(spec) for name, spec in data.items()}
    except (ValueError, ValidationError) as exc:
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise ValueError(f"PORTAL_API_TOKENS_FILE {str(path)!r} is not valid: {detail}") from None
    return WebSettings._token_names(specs)


def _where(loc: tuple) -> str:
    field = str(loc[0]) if loc else ""
    if not field:
        return "settings"
    if field in ENV_NAMES:
        return ENV_NAMES[field]
    if field.startswith(("PORTAL_", "JUPYTERHUB_")):
        return field
    return f"PORTAL_{field.upper()}"


def _not_json(exc: PydanticSettingsError) -> SettingsError:
    field = re.search(r'field "([^"]+)"', str(exc))
    where = _where((field.group(1),)) if field else "settings"
    return SettingsError(f"invalid portal settings: {where}: not valid JSON")


def load_engine_settings(**overrides: object) -> PortalSettings:
    """The engine's settings (portal.settings), with a JSON-valued variable that is not JSON reported
    like every other bad value (pydantic-settings raises its own error for those)."""
    try:
        return load_settings(**overrides)
    except PydanticSettingsError as exc:
        raise _not_json(exc) from None


def load_web_settings(**overrides: object) -> WebSettings:
    """Read and validate the web settings; raise SettingsError naming each bad variable."""
    try:
        return WebSettings(**overrides)
    except PydanticSettingsError as exc:  # a JSON-valued variable that is not JSON
        raise _not_json(exc) from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{_where(error['loc'])}: {message}")
        raise SettingsError("invalid portal settings: " + "; ".join(problems)) from None
