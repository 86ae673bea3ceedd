"""Portal settings: read once from ``PORTAL_*`` environment variables and validated.

Call :func:`load_settings` at start; a bad value raises :class:`SettingsError` whose message names
the environment variable. Nothing here runs at import time.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "PORTAL_"
# DNS-1123 label, as Kubernetes requires for namespace names (and prefixes of them).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_PREFIX = re.compile(r"^[a-z0-9][-a-z0-9]*$")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


def http_url(value: str | None) -> str | None:
    """An http(s) URL without its trailing slash, or None; the validator of every URL setting."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore")

    # Storage. SQLite is the embedded default for a local trial; production uses PostgreSQL.
    database_url: SecretStr = SecretStr("sqlite:///portal.db")
    timezone: str = "Asia/Taipei"

    # What the collector watches.
    hub_namespace: str = "jhub"
    user_namespace_prefix: str | None = None  # e.g. "jhub-" for per-user namespaces jhub-alice...
    user_namespace_label: str | None = None  # e.g. "jhub.io/user-namespace=true"
    pod_label_selector: str = "component=singleuser-server"
    notebook_container: str = "notebook"
    gpu_resource: str = "nvidia.com/gpu"
    rdma_resource_prefix: str = "rdma/"
    gpu_model_label: str = "nvidia.com/gpu.product"
    kube_config_mode: Literal["auto", "in-cluster", "kubeconfig"] = "auto"
    kubeconfig: str | None = None
    user_storage_size: str | None = None  # e.g. "128Gi": each user's storage, where pods and claims tell nothing
    resync_interval_seconds: float = Field(default=300.0, gt=0)
    heartbeat_interval_seconds: float = Field(default=30.0, gt=0)

    # Rates (seed the rates table; admins edit them there).
    currency: str = "USD"
    gpu_rate_per_hour: float = Field(default=4.0, ge=0)
    cpu_rate_per_core_hour: float = Field(default=0.0, ge=0)
    memory_rate_per_gib_hour: float = Field(default=0.0, ge=0)
    gpu_model_rates: dict[str, float] = Field(default_factory=dict)  # JSON: {"NVIDIA-A100-SXM4-80GB": 6}

    # Limits for users without a row of their own; None means unlimited.
    default_cpu_limit: float | None = Field(default=None, ge=0)
    default_memory_gib_limit: float | None = Field(default=None, ge=0)
    default_gpu_limit: int | None = Field(default=None, ge=0)
    default_gpu_hours_monthly: float | None = Field(default=None, ge=0)
    default_budget_monthly: float | None = Field(default=None, ge=0)  # money, in the portal's currency

    # Optional export to an external MySQL/MariaDB `pod_report` table.
    mysql_url: SecretStr | None = None
    mysql_sync_interval_seconds: float = Field(default=60.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Taipei)") from None
        return value

    @field_validator("hub_namespace")
    @classmethod
    def _namespace_name(cls, value: str) -> str:
        if not _DNS_LABEL.match(value) or len(value) > 63:
            raise ValueError(f"{value!r} is not a valid Kubernetes namespace name")
        return value

    @field_validator("user_namespace_prefix")
    @classmethod
    def _namespace_prefix(cls, value: str | None) -> str | None:
        if value is not None and not _DNS_PREFIX.match(value):
            raise ValueError(f"{value!r} is not a valid Kubernetes namespace prefix")
        return value

    @field_validator("user_namespace_label", "pod_label_selector")
    @classmethod
    def _label_selector(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[\w./-]+(=[\w.-]*)?(,[\w./-]+(=[\w.-]*)?)*$", value):
            raise ValueError(f"{value!r} is not a label selector of the form key=value[,key=value]")
        return value

    @field_validator("user_storage_size")
    @classmethod
    def _quantity(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from kubernetes.utils.quantity import parse_quantity

        try:
            if parse_quantity(value) < 0:
                raise ValueError
        except ValueError:
            raise ValueError(f"{value!r} is not a Kubernetes quantity such as 128Gi") from None
        return value

    @field_validator("gpu_model_rates")
    @classmethod
    def _non_negative_rates(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(model for model, rate in value.items() if rate < 0 or not model)
        if bad:
            raise ValueError(f"GPU model rates must have a model name and a rate >= 0: {bad}")
        return dict(sorted(value.items()))

    @field_validator("database_url")
    @classmethod
    def _portal_database(cls, value: SecretStr) -> SecretStr:
        backend, driver = _backend(value.get_secret_value())
        if backend in ("postgres", "postgresql") and driver != "psycopg":
            scheme = f"{backend}+{driver}" if driver else backend
            raise ValueError(f"{scheme}:// needs another driver: write postgresql+psycopg://user@host/db "
                             "(psycopg 3 is the PostgreSQL driver the portal ships)")
        if backend == "sqlite" and driver not in (None, "pysqlite"):
            raise ValueError("use sqlite:///path/to/portal.db for the embedded database")
        if backend in ("mysql", "mariadb"):
            raise ValueError("MySQL/MariaDB cannot hold the portal's own database (use PostgreSQL, or SQLite for "
                             "a trial); MySQL only receives the export, through PORTAL_MYSQL_URL")
        if backend not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported database {backend!r}: use postgresql+psycopg://user@host/db or "
                             "sqlite:///path/to/portal.db")
        return value

    @field_validator("mysql_url")
    @classmethod
    def _export_database(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        backend, driver = _backend(value.get_secret_value())
        if backend not in ("mysql", "mariadb") or driver != "pymysql":
            raise ValueError("expected a MySQL/MariaDB URL such as mysql+pymysql://user:password@host/db "
                             "(PyMySQL is the driver the portal ships)")
        return value

    @model_validator(mode="after")
    def _kubeconfig_needs_path(self) -> PortalSettings:
        if self.kube_config_mode == "kubeconfig" and not self.kubeconfig:
            raise ValueError(f"{ENV_PREFIX}KUBECONFIG must be set when {ENV_PREFIX}KUBE_CONFIG_MODE=kubeconfig")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def user_storage_bytes(self) -> int | None:
        if self.user_storage_size is None:
            return None
        from kubernetes.utils.quantity import parse_quantity

        return int(parse_quantity(self.user_storage_size))


def _backend(url: str) -> tuple[str, str | None]:
    """(backend, driver) of a SQLAlchemy URL; ValueError without repeating the URL (it may hold a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" not in url:
        raise ValueError("expected a SQLAlchemy URL such as postgresql+psycopg://user@host/db")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError("not a valid SQLAlchemy URL (expected e.g. postgresql+psycopg://user@host/db)") from None
    backend, _, driver = parsed.drivername.partition("+")
    return backend, driver or None


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(**overrides: object) -> PortalSettings:
    """Read and validate the settings; raise SettingsError naming each bad variable."""
    try:
        return PortalSettings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            where = env_name(field) if field else "settings"
            problems.append(f"{where}: {error['msg']}")
        raise SettingsError("invalid portal settings: " + "; ".join(problems)) from None
