"""The GPU tables: raw samples (kept for a retention period) and the rollups that outlive them.

Imported by :mod:`portal.models`, so that the tables are on ``SQLModel.metadata`` for migrations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from portal.sqltypes import UTCDateTime


def _utc(*, nullable: bool = False, primary_key: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, primary_key=primary_key,
                                                   index=index))


def _bytes() -> Any:
    return Field(default=0, sa_type=sa.BigInteger)


class GpuSample(SQLModel, table=True):
    """One GPU (or MIG slice) of one node at one instant, as its agent read it.

    The key is the sample itself (node, device, instant): a batch sent twice inserts nothing the second
    time, so a retried batch is never counted twice. Pruned after ``PORTAL_GPU_SAMPLE_RETENTION_DAYS``.
    """

    __tablename__ = "gpu_samples"

    node_name: str = Field(primary_key=True, max_length=253)
    gpu_uuid: str = Field(primary_key=True, max_length=96)  # GPU-... or MIG-...
    sampled_at: datetime = _utc(primary_key=True, index=True)
    parent_uuid: str = Field(default="", max_length=96)  # the physical GPU of a MIG slice; "" for a GPU
    gpu_model: str = Field(default="", max_length=255)
    util_percent: float | None = None  # None where NVML cannot tell (MIG slices)
    memory_used_bytes: int = _bytes()
    memory_total_bytes: int = _bytes()
    power_watts: float | None = None
    temperature_c: float | None = None
    # only without util_percent: a MIG slice without GPM: a compute process holds it (the agent's flag); a GPU in
    # MIG mode: any of its slices was busy at this instant (derived at ingest, portal/gpu/ingest.py)
    active: bool | None = None
    allocated: bool = False  # held by a pod (a GPU counts as held when one of its MIG slices is)
    pod_uids: str = Field(default="", max_length=1024)  # sorted, comma-separated; "" when nobody


class GpuSessionUsage(SQLModel, table=True):
    """Per session (pod UID): sums and peaks of its GPUs' samples, its idle clock and its reclaim state.

    ``last_busy_at`` is the latest sample at or above the idle threshold (or, for a MIG slice without a
    utilisation, flagged active); a session is idle since then (or since its first sample with an activity
    reading: a utilisation or that flag). Averages and peaks are per GPU, over utilisation readings only.
    """

    __tablename__ = "gpu_session_usage"

    pod_uid: str = Field(primary_key=True, max_length=64)
    samples: int = 0
    util_samples: int = 0  # samples with a utilisation reading
    util_sum: float = 0.0
    util_peak: float | None = None
    memory_sum_bytes: int = _bytes()
    memory_peak_bytes: int = _bytes()
    first_at: datetime = _utc()
    last_at: datetime = _utc()
    first_util_at: datetime | None = _utc(nullable=True)  # the first sample with an activity reading
    last_busy_at: datetime | None = _utc(nullable=True)
    warned_at: datetime | None = _utc(nullable=True)  # reclaim: when the user was warned
    stop_requested_at: datetime | None = _utc(nullable=True)  # reclaim: when the hub was asked to stop it


class GpuHourly(SQLModel, table=True):
    """Per node, GPU and UTC hour: sample counts, sums and peaks (kept; the raw samples are pruned)."""

    __tablename__ = "gpu_hourly"

    node_name: str = Field(primary_key=True, max_length=253)
    gpu_uuid: str = Field(primary_key=True, max_length=96)
    hour: datetime = _utc(primary_key=True, index=True)
    parent_uuid: str = Field(default="", max_length=96)
    gpu_model: str = Field(default="", max_length=255)
    samples: int = 0
    util_samples: int = 0
    util_sum: float = 0.0
    util_peak: float | None = None
    memory_sum_bytes: int = _bytes()
    memory_peak_bytes: int = _bytes()
    memory_total_bytes: int = _bytes()
    allocated_samples: int = 0
    busy_samples: int = 0  # samples at or above the idle threshold (or flagged active: a MIG slice, or a MIG GPU
    # with a busy slice; see GpuSample.active)
