"""`jhub:auth`: how people sign in. `mode` picks one of six authenticators; each has its own object.

The object of the chosen mode is required (its own required fields are reported one by one); objects of
other modes are refused, so a half-switched config cannot leave a stale client secret behind. Client
secrets, bind passwords and initial admin passwords are `Secret`: set them with
`pulumi config set --secret --path 'jhub:auth.<mode>.<field>' <value>`.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, ValidationInfo, field_validator

from .auth_modes import AzureAdAuth, CookieSsoAuth, GithubAuth, LdapAuth, NativeAuth, OidcAuth
from .base import StrictModel
from .spawn import username

MODES = ("native", "github", "azuread", "oidc", "ldap", "cookie-sso")
MODE_KEY = {"native": "native", "github": "github", "azuread": "azuread", "oidc": "oidc", "ldap": "ldap",
            "cookie-sso": "cookieSso"}
def _mode_object(value: Any, info: ValidationInfo, mode: str) -> Any:
    """The chosen mode's object is required (its fields are then checked one by one); others are refused."""
    current = info.data.get("mode")
    if current is None:
        return value
    if current == mode and value is None:
        return {}
    if current != mode and value is not None:
        raise ValueError(f'is only used with mode "{mode}", but mode is "{current}"; remove it')
    return value


def pem_certificates(value: str) -> str:
    """One or more PEM certificates (a CA bundle), normalized to end in one newline."""
    from cryptography import x509

    text = value.strip()
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError("must be PEM text (-----BEGIN CERTIFICATE-----), not a file path: "
                         "pulumi config set --path 'jhub:auth.caCertificate' -- \"$(cat ca.pem)\"")
    if "PRIVATE KEY" in text:
        raise ValueError("holds a private key; give only the CA certificate(s)")
    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError as error:
        raise ValueError(f"is not a readable PEM certificate: {error}") from None
    return text + "\n"


class AuthSettings(StrictModel):
    mode: Literal["native", "github", "azuread", "oidc", "ldap", "cookie-sso"] = "native"
    allowed_users: list[str] = Field(default_factory=list)
    allow_all: bool = False
    # The site's own CA (PEM, one or more certificates; not a secret): the hub trusts it, instead of the
    # public CAs, for the identity provider (OAuth), the LDAP server, the cookie SSO and the portal.
    ca_certificate: Optional[str] = None
    native: Optional[NativeAuth] = Field(default=None, validate_default=True)
    github: Optional[GithubAuth] = Field(default=None, validate_default=True)
    azuread: Optional[AzureAdAuth] = Field(default=None, validate_default=True)
    oidc: Optional[OidcAuth] = Field(default=None, validate_default=True)
    ldap: Optional[LdapAuth] = Field(default=None, validate_default=True)
    cookie_sso: Optional[CookieSsoAuth] = Field(default=None, validate_default=True)

    @field_validator("allowed_users")
    @classmethod
    def _users(cls, values: list[str]) -> list[str]:
        return sorted({username(v) for v in values})

    @field_validator("ca_certificate")
    @classmethod
    def _ca(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else pem_certificates(value)

    @field_validator("native", mode="before")
    @classmethod
    def _native(cls, value: Any, info: ValidationInfo) -> Any:
        return _mode_object(value, info, "native")

    @field_validator("github", mode="before")
    @classmethod
    def _github(cls, value: Any, info: ValidationInfo) -> Any:
        return _mode_object(value, info, "github")

    @field_validator("azuread", mode="before")
    @classmethod
    def _azuread(cls, value: Any, info: ValidationInfo) -> Any:
        return _mode_object(value, info, "azuread")

    @field_validator("oidc", mode="before")
    @classmethod
    def _oidc(cls, value: Any, info: ValidationInfo) -> Any:
        return _mode_object(value, info, "oidc")

    @field_validator("ldap", mode="before")
    @classmethod
    def _ldap(cls, value: Any, info: ValidationInfo) -> Any:
        return _mode_object(value, info, "ldap")

    @field_validator("cookie_sso", mode="before")
    @classmethod
    def _cookie_sso(cls, value: Any, info: ValidationInfo) -> Any:
        return _mode_object(value, info, "cookie-sso")

    @property
    def mode_settings(self) -> Any:
        return getattr(self, {"cookie-sso": "cookie_sso"}.get(self.mode, self.mode))

    @property
    def mode_key(self) -> str:
        return MODE_KEY[self.mode]
