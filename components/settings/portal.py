"""`jhub:portal`: the usage and billing portal, as far as the hub needs it.

`enabled: true` means "the hub calls this portal": before each spawn the hub asks it for the user's limits
(CPU, memory, GPUs, GPU-hour budget). Deploying the portal itself is a later feature; until then `url`
points at the in-cluster Service that deployment will create. `nodePort`, `timezone` and `rates` are the
portal's own keys of the config contract, checked now so a typo is caught today.
"""

from __future__ import annotations

from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator

from . import validators as check
from .base import Secret, StrictModel, secrets_known
from .offline import URL_RE

SERVICE_NAME = "jhub-portal"
SERVICE_PORT = 29781  # the portal listens on PORTAL_PORT, 29781 by default (the old portal's port)


class Rates(StrictModel):
    """Prices per hour of use, in the site's currency."""

    gpu_hour: float = Field(default=4.0, ge=0)
    cpu_hour: float = Field(default=0.0, ge=0)
    memory_gib_hour: float = Field(default=0.0, ge=0, alias="memoryGiBHour")


class PortalSettings(StrictModel):
    enabled: bool = False
    url: Optional[str] = None  # default: http://jhub-portal.<jhub:hub.namespace>.svc:29781
    # Where browsers open the portal; its sign-in returns to <publicUrl>/oauth_callback through the hub.
    # Default: http://<the hub's host>:<nodePort> (components/jupyterhub/urls.py).
    public_url: Optional[str] = None
    api_token: Optional[Secret] = Field(default=None, validate_default=True)
    fail_open: bool = False  # portal down: false refuses spawns, true lets them through; both are logged
    timeout: str = "5s"
    verify_tls: bool = True
    node_port: int = Field(default=29781, ge=1, le=65535)
    timezone: str = "Asia/Taipei"  # the old portal's zone; times are stored in UTC either way
    rates: Rates = Field(default_factory=Rates)

    @field_validator("url", "public_url")
    @classmethod
    def _url(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not URL_RE.match(value):
            raise ValueError(f'must be an http(s) URL such as "http://jhub-portal.jhub.svc:29781", got "{value}"')
        return None if value is None else value.rstrip("/")

    @field_validator("api_token")
    @classmethod
    def _token(cls, value: Optional[Secret], info: ValidationInfo) -> Optional[Secret]:
        if not secrets_known(info):
            return value
        if value is None and info.data.get("enabled"):
            raise ValueError("is required when the portal is enabled: "
                             "pulumi config set --secret --path 'jhub:portal.apiToken' <token>")
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        seconds = check.duration_seconds(value, minimum=1)
        if seconds > 60:
            raise ValueError(f"must be at most 60s: a spawn waits for it, got {value}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'must be an IANA time zone such as "Asia/Taipei", got "{value}"') from None
        return value

    def url_in(self, namespace: str) -> str:
        return self.url or f"http://{SERVICE_NAME}.{namespace}.svc:{SERVICE_PORT}"

    @property
    def timeout_seconds(self) -> int:
        return check.duration_seconds(self.timeout)
