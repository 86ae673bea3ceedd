"""The object of each `jhub:auth.mode`: its fields, defaults and checks. Secrets are `Secret` fields."""

from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import Field, ValidationInfo, field_validator

from .base import Secret, StrictModel, secrets_known
from .offline import URL_RE

COOKIE_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def url(value: Optional[str]) -> Optional[str]:
    if value is not None and not URL_RE.match(value):
        raise ValueError(f'must be an absolute http(s) URL, got "{value}"')
    return value


class _Checked(StrictModel):
    @field_validator("*", mode="after")
    @classmethod
    def _urls(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name and info.field_name.endswith("_url") and isinstance(value, str):
            return url(value)
        return value


class NativeAuth(_Checked):
    """Accounts kept by the hub. Admin accounts are created at hub start with `adminPasswords`."""

    enable_signup: bool = True
    open_signup: bool = False  # off: an admin approves each signup
    minimum_password_length: int = Field(default=8, ge=8, le=128)
    admin_passwords: dict[str, Secret] = Field(default_factory=dict)

    @field_validator("admin_passwords")
    @classmethod
    def _normalized_names(cls, passwords: dict[str, Secret]) -> dict[str, Secret]:
        """Keyed by the normalized (lowercase) name, like jhub:hub.adminUsers."""
        names = [name.lower() for name in passwords]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f'"{twice[0]}" is given twice (names are not case-sensitive)')
        return {name.lower(): secret for name, secret in sorted(passwords.items())}


class _OAuth(_Checked):
    client_id: str = Field(min_length=1)
    client_secret: Optional[Secret] = Field(default=None, validate_default=True)
    callback_url: Optional[str] = None  # default: <hub URL>/hub/oauth_callback
    login_service: str = ""

    @field_validator("client_secret")
    @classmethod
    def _secret(cls, value: Optional[Secret], info: ValidationInfo) -> Optional[Secret]:
        if value is None and secrets_known(info):
            raise ValueError("is required (pulumi config set --secret --path "
                             "'jhub:auth.<mode>.clientSecret' <secret from the identity provider>)")
        return value


class GithubAuth(_OAuth):
    allowed_organizations: list[str] = Field(default_factory=list)
    github_url: str = "https://github.com"


class AzureAdAuth(_OAuth):
    tenant_id: str = Field(min_length=1)
    username_claim: str = "preferred_username"


class OidcAuth(_OAuth):
    """Keycloak or any OpenID Connect issuer."""

    authorize_url: str
    token_url: str
    userdata_url: str
    username_claim: str = "preferred_username"
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"], min_length=1)
    logout_redirect_url: Optional[str] = None
    allowed_groups: list[str] = Field(default_factory=list)
    groups_claim: str = "groups"
    verify_tls: bool = True


class LdapAuth(_Checked):
    server_address: str = Field(min_length=1)
    server_port: Optional[int] = Field(default=None, ge=1, le=65535)
    tls: Literal["before_bind", "on_connect", "insecure"] = "before_bind"
    verify_tls: bool = True  # the server's certificate must chain to jhub:auth.caCertificate (else the public CAs)
    bind_dn_templates: list[str] = Field(default_factory=list)
    lookup_dn: bool = False
    search_base: str = ""
    search_user_dn: str = ""
    search_password: Optional[Secret] = None
    user_attribute: str = "uid"
    # lookupDn: the attribute of the found entry that names the user (default: userAttribute); Active
    # Directory: sAMAccountName. Its value fills {username} in bindDnTemplates; without templates the found
    # entry's DN is used.
    user_dn_attribute: Optional[str] = None
    allowed_groups: list[str] = Field(default_factory=list)

    @field_validator("bind_dn_templates")
    @classmethod
    def _templates(cls, templates: list[str]) -> list[str]:
        for template in templates:
            if "{username}" not in template:
                raise ValueError(f'each template must contain "{{username}}", got "{template}"')
        return templates


class CookieSsoAuth(_Checked):
    """Replaces the old `ubilink` mode: the hub asks `authMeUrl` who owns the SSO session cookie."""

    cookie_name: str
    auth_me_url: str
    login_url: str
    username_field: str = "username"
    next_parameter: str = "next"
    timeout_seconds: float = Field(default=5, gt=0, le=60)
    verify_tls: bool = True
    login_service: str = "SSO"

    @field_validator("cookie_name")
    @classmethod
    def _cookie(cls, value: str) -> str:
        if not COOKIE_NAME_RE.match(value):
            raise ValueError(f'must be a cookie name (letters, digits, "-", "_", "."), got "{value}"')
        if value.startswith(("jupyterhub-", "_xsrf")):
            raise ValueError(f'"{value}" is one of the hub\'s own cookies; name the SSO\'s session cookie')
        return value
