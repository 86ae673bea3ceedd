"""The portal's tables. All times are aware UTC (``UTCDateTime``); shown in the configured zone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from portal.sqltypes import UTCDateTime

# One naming convention so that constraint names are identical on PostgreSQL and SQLite migrations.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _utc(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


class PodSession(SQLModel, table=True):
    """One run of one user pod, keyed by the pod's UID (names are reused; UIDs never are)."""

    __tablename__ = "pod_sessions"
    __table_args__ = (sa.Index("ix_pod_sessions_user_name_started_at", "user_name", "started_at"),)

    pod_uid: str = Field(primary_key=True, max_length=64)
    user_name: str = Field(max_length=255)
    server_name: str = Field(default="", max_length=255)  # "" for the default server
    namespace: str = Field(max_length=63)
    pod_name: str = Field(max_length=253)
    node_name: str | None = Field(default=None, max_length=253)
    image: str | None = Field(default=None, max_length=1024)
    gpu_model: str = Field(default="", max_length=255)  # "" when unknown or no GPU
    cpu_request: float = 0.0  # cores
    memory_request_bytes: int = Field(default=0, sa_type=sa.BigInteger)
    gpu_count: int = 0
    rdma_count: int = 0
    storage_request_bytes: int | None = Field(default=None, sa_type=sa.BigInteger)
    started_at: datetime = _utc(index=True)  # container running startedAt
    ended_at: datetime | None = _utc(nullable=True, index=True)  # None while the session is open
    end_source: str | None = Field(default=None, max_length=16)  # finished | deleted | last_seen
    end_approximate: bool = False  # True when the end is the last-seen bound, not a pod timestamp
    last_seen_at: datetime = _utc()


class UsageDaily(SQLModel, table=True):
    """Closed sessions' usage split by calendar day in the rollup time zone (kept by the collector)."""

    __tablename__ = "usage_daily"
    __table_args__ = (sa.Index("ix_usage_daily_user_name_day", "user_name", "day"),)  # one user's days

    day: date = Field(primary_key=True)
    user_name: str = Field(primary_key=True, max_length=255)
    gpu_model: str = Field(primary_key=True, max_length=255)
    runtime_seconds: float = 0.0
    gpu_seconds: float = 0.0  # GPU count x seconds
    cpu_core_seconds: float = 0.0
    memory_gib_seconds: float = 0.0


class User(SQLModel, table=True):
    """A user's limits. A user without a row gets the configured defaults; None means unlimited."""

    __tablename__ = "users"

    name: str = Field(primary_key=True, max_length=255)
    cpu_limit: float | None = None
    memory_gib_limit: float | None = None
    gpu_limit: int | None = None
    gpu_hours_monthly: float | None = None
    budget_monthly: float | None = None  # money per calendar month, in the portal's currency
    updated_at: datetime | None = _utc(nullable=True)
    updated_by: str | None = Field(default=None, max_length=255)


class Rate(SQLModel, table=True):
    """Prices per hour, each from a calendar day (in the configured zone) until the model's next row.

    The rows with gpu_model "" are the default; other rows override it per GPU model. Past days keep the
    prices that were in force then: a change is a new row, never an edit of an old one.
    """

    __tablename__ = "rates"

    gpu_model: str = Field(primary_key=True, max_length=255)
    effective_from: date = Field(primary_key=True)  # the first local day these prices apply to
    gpu_hour: float | None = None  # None in an override row: use the default row's price
    cpu_core_hour: float | None = None
    memory_gib_hour: float | None = None
    updated_at: datetime | None = _utc(nullable=True)
    updated_by: str | None = Field(default=None, max_length=255)  # an admin, or "system:settings"


class AuditLog(SQLModel, table=True):
    """What an admin did, to what, and when."""

    __tablename__ = "audit_log"

    # BIGINT on PostgreSQL; INTEGER on SQLite, where only an INTEGER key numbers itself (the rowid)
    id: int | None = Field(default=None, primary_key=True,
                           sa_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"))
    at: datetime = _utc(index=True)
    actor: str = Field(max_length=255)
    action: str = Field(max_length=64)  # e.g. pod.delete, limits.update, storage.remove
    target: str = Field(max_length=512)
    detail: dict | None = Field(default=None, sa_type=sa.JSON)


class MysqlOutbox(SQLModel, table=True):
    """Sessions changed since they were last exported to MySQL; rows leave once MySQL has them."""

    __tablename__ = "mysql_outbox"

    pod_uid: str = Field(primary_key=True, max_length=64)
    version: int = 1  # bumped by each change, so an export never removes a newer change
    enqueued_at: datetime = _utc()


class PortalMeta(SQLModel, table=True):
    """Small key/value facts about the database itself, e.g. the rollup time zone."""

    __tablename__ = "portal_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=1024)


class PortalSession(SQLModel, table=True):
    """A signed-in browser. The cookie carries a random id; only its SHA-256 is kept here, so a copy of this
    table signs nobody in. Signing out deletes the row; the user and admin flag are re-read from the hub."""

    __tablename__ = "portal_sessions"

    id_sha256: str = Field(primary_key=True, max_length=64)
    user_name: str = Field(max_length=255, index=True)
    admin: bool = False  # as the hub last said
    created_at: datetime = _utc()
    expires_at: datetime = _utc(index=True)
    checked_at: datetime = _utc()  # when the hub last confirmed user_name and admin


# The GPU utilisation tables live with their code; importing them here puts them on the metadata.
from portal.gpu.models import GpuHourly, GpuSample, GpuSessionUsage  # noqa: E402, F401
