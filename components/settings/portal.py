"""`jhub:portal`: the usage and billing portal (components/portal/ deploys it), and what the hub needs of it.

`enabled: true` (the default) deploys the portal next to the hub, in the hub's namespace, and makes the hub
call it before each spawn for the user's limits (CPU, memory, GPUs, GPU-hour budget). `url` points the hub at
another portal instead; `apiToken` (the hub's limits-hook token) is generated once and kept in the stack
state unless one is configured. The database is PostgreSQL in the cluster, or `databaseUrl` (a secret).
"""

from __future__ import annotations

from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator

from . import validators as check
from .base import Secret, StrictModel, secrets_known
from .offline import URL_RE
from .storage import quantity

SERVICE_NAME = "jhub-portal"
SERVICE_PORT = 29781  # the portal listens on PORTAL_PORT, 29781 by default (the old portal's port)


class Rates(StrictModel):
    """Prices per hour of use, in the site's currency."""

    gpu_hour: float = Field(default=4.0, ge=0)
    cpu_hour: float = Field(default=0.0, ge=0)
    memory_gib_hour: float = Field(default=0.0, ge=0, alias="memoryGiBHour")


class DatabaseSettings(StrictModel):
    """The in-cluster PostgreSQL (ignored when `jhub:portal.databaseUrl` is set)."""

    size: str = "10Gi"  # its volume claim, on the default StorageClass (hostpath-storage)
    storage_class: Optional[str] = None  # default: the cluster's default StorageClass

    @field_validator("size")
    @classmethod
    def _size(cls, value: str) -> str:
        return quantity(value)


_MINIMUM_SECONDS = {"idle_period": 60, "reclaim_warning": 0}  # of jhub:portal.gpu's durations


class PortalGpuSettings(StrictModel):
    """`jhub:portal.gpu`: when a session's GPUs count as idle, how long raw samples are kept, and idle-GPU
    reclaim (off by default). With `reclaim: true` the portal stops a server flagged idle GPU through the hub
    API after `reclaimWarning`, warning its user on the hub's pages first; the hub grants the portal's
    service the `servers` scope for that, and only then."""

    idle_threshold_percent: float = Field(default=5.0, ge=0, le=100)  # a GPU below this utilisation is idle
    idle_period: str = "2h"  # all of a session's GPUs idle this long: flagged "idle GPU"
    sample_retention_days: float = Field(default=7.0, gt=0)  # raw samples; the rollups are kept
    reclaim: bool = False
    reclaim_warning: str = "1h"  # flagged and warned this long before the stop

    @field_validator("idle_period", "reclaim_warning")
    @classmethod
    def _duration(cls, value: str, info: ValidationInfo) -> str:
        check.duration_seconds(value, minimum=_MINIMUM_SECONDS[info.field_name])
        return value

    @property
    def idle_period_seconds(self) -> int:
        return check.duration_seconds(self.idle_period, minimum=_MINIMUM_SECONDS["idle_period"])

    @property
    def reclaim_warning_seconds(self) -> int:
        return check.duration_seconds(self.reclaim_warning, minimum=_MINIMUM_SECONDS["reclaim_warning"])


class PortalSettings(StrictModel):
    enabled: bool = True
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
    # An external PostgreSQL instead of the in-cluster one: postgresql+psycopg://user:password@host/db
    database_url: Optional[Secret] = None
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    # The GPU agent DaemonSet on GPU nodes: default follows jhub:gpu.operator.
    gpu_agent: Optional[bool] = None
    gpu: PortalGpuSettings = Field(default_factory=PortalGpuSettings)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: Optional[Secret], info: ValidationInfo) -> Optional[Secret]:
        if value is None or not secrets_known(info):
            return value
        if not value.get_secret_value().startswith("postgresql+psycopg://"):
            # never repeat the value: it holds a password
            raise ValueError("must be a PostgreSQL URL of the form postgresql+psycopg://user:password@host:5432/db "
                             "(psycopg is the driver the portal ships)")
        return value

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
