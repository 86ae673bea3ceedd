"""What pages and the reclaim pass read about GPUs: per session, per node over time, per node now.

Every function is keyword-only, takes a SQLAlchemy ``Session`` or ``Connection`` and aware UTC datetimes,
and returns frozen dataclasses. Thresholds come from :class:`~portal.gpu.settings.GpuSettings`; pass the
portal's (``settings=``) so that pages agree with the reclaim pass; the defaults are the documented ones.

Idle GPU: a session is idle since its last sample at or above the idle threshold (or since its first
sample with a utilisation). A MIG slice without a utilisation reading (no GPM: A100) counts by its
``active`` flag instead (portal/agent/gpm.py): busy while a compute process holds it, idle otherwise.
A session is flagged **idle GPU** when it is still running, holds GPUs, its latest sample is fresh
(``stale_seconds``) and the idle stretch is at least ``idle_period_seconds`` long -- proved by samples, so
an agent that stopped sending never gets a server flagged.

GPUs per node (now and over time) count physical GPUs only. One is busy when its own utilisation is at or
above the idle threshold or, where it has none (a GPU in MIG mode), when any of its slices was busy at that
instant -- derived at ingest into the GPU's ``active`` flag and its hourly ``busy_samples`` (see
portal/gpu/ingest.py for why there). It is allocated when a pod holds it or any of its slices. The average
utilisation is over physical GPUs that read their own: a MIG GPU adds nothing to it (its slices' SM
utilisation is a share of a slice, not of a GPU), so a node with only MIG GPUs has none.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from portal.gpu.ingest import is_busy
from portal.gpu.models import GpuHourly, GpuSample, GpuSessionUsage
from portal.gpu.settings import GpuSettings
from portal.models import PodSession

samples_table = GpuSample.__table__
session_usage = GpuSessionUsage.__table__
hourly = GpuHourly.__table__
sessions = PodSession.__table__
HOUR_SECONDS = 3600


@dataclass(frozen=True)
class SessionGpuUsage:
    pod_uid: str
    avg_util_percent: float | None  # per GPU, over samples with a utilisation reading; None: no reading
    peak_util_percent: float | None
    avg_memory_bytes: int | None  # per GPU (or the pod's own share of a shared GPU)
    peak_memory_bytes: int | None
    samples: int  # GPU samples (one per GPU per agent interval)
    idle_gpu: bool  # flagged: idle for at least the idle period (see the module doc)
    idle_since: datetime | None  # start of the current idle stretch, while running with fresh samples
    first_sample_at: datetime | None = None
    last_sample_at: datetime | None = None


@dataclass(frozen=True)
class NodeGpuPoint:
    node: str
    bucket_start: datetime
    gpus_total: int  # physical GPUs that sent samples in the bucket
    gpus_allocated: float  # GPUs held by pods, averaged over the bucket (2.5 = two and a half on average)
    gpus_busy: float  # GPUs at or above the idle threshold (MIG: any slice busy), averaged likewise
    avg_util_percent: float | None  # over GPUs with their own reading (not MIG GPUs)


@dataclass(frozen=True)
class NodeGpuNow:
    node: str
    gpus_total: int
    gpus_allocated: int
    gpus_busy: int  # at or above the idle threshold, or (MIG, no utilisation) any slice busy
    avg_util_percent: float | None  # over GPUs with their own reading (not MIG GPUs)
    gpu_model: str  # the node's GPU model(s), ", "-joined when mixed


@dataclass(frozen=True)
class IdleGpuSession:
    pod_uid: str
    user_name: str
    server_name: str
    pod_name: str
    node_name: str | None
    gpu_count: int
    idle_since: datetime
    warned_at: datetime | None  # reclaim: when the user was warned (None: not yet, or reclaim is off)
    stop_at: datetime | None  # reclaim: when the server will be stopped (None: reclaim is off or not warned)
    namespace: str = ""
    gpu_model: str = ""
    stop_requested_at: datetime | None = None  # reclaim: when the hub was asked to stop it


def _settings(settings: GpuSettings | None) -> GpuSettings:
    return settings if settings is not None else GpuSettings.model_construct()


def _dialect_name(db) -> str:
    dialect = getattr(db, "dialect", None) or db.get_bind().dialect
    return dialect.name


def _in(db, column: sa.Column, values: list) -> sa.ColumnElement[bool]:
    if _dialect_name(db) == "postgresql":  # one array parameter however many values
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.cast(sa.bindparam(None, values, type_=ARRAY(column.type)), ARRAY(column.type)))
    return column.in_(values)


def idle_since_of(*, last_busy_at: datetime | None, first_util_at: datetime | None) -> datetime | None:
    return last_busy_at if last_busy_at is not None else first_util_at


def idle_state(*, usage: dict, ended_at: datetime | None, gpu_count: int, now: datetime,
               settings: GpuSettings) -> tuple[datetime | None, bool]:
    """(idle since, flagged) of one session from its usage row (see the module doc)."""
    since = idle_since_of(last_busy_at=usage["last_busy_at"], first_util_at=usage["first_util_at"])
    fresh = now - usage["last_at"] <= timedelta(seconds=settings.stale_seconds)
    if since is None or ended_at is not None or gpu_count <= 0 or not fresh:
        return None, False
    idle_for = usage["last_at"] - since
    return since, idle_for >= timedelta(seconds=settings.idle_period_seconds)


def session_gpu_usage(db, *, pod_uids: list[str], now: datetime | None = None,
                      settings: GpuSettings | None = None) -> dict[str, SessionGpuUsage]:
    """GPU utilisation of the given sessions; sessions without samples are absent from the answer."""
    if not pod_uids:
        return {}
    settings, now = _settings(settings), now or datetime.now(UTC)
    query = (sa.select(session_usage, sessions.c.ended_at, sessions.c.gpu_count)
             .select_from(session_usage.outerjoin(sessions, sessions.c.pod_uid == session_usage.c.pod_uid))
             .where(_in(db, session_usage.c.pod_uid, sorted(set(pod_uids)))))
    answer = {}
    for row in db.execute(query):
        usage = row._mapping
        since, flagged = idle_state(usage=usage, ended_at=usage["ended_at"], gpu_count=usage["gpu_count"] or 0,
                                    now=now, settings=settings)
        samples = usage["samples"]
        answer[usage["pod_uid"]] = SessionGpuUsage(
            pod_uid=usage["pod_uid"],
            avg_util_percent=usage["util_sum"] / usage["util_samples"] if usage["util_samples"] else None,
            peak_util_percent=usage["util_peak"],
            avg_memory_bytes=round(usage["memory_sum_bytes"] / samples) if samples else None,
            peak_memory_bytes=usage["memory_peak_bytes"] if samples else None,
            samples=samples, idle_gpu=flagged, idle_since=since,
            first_sample_at=usage["first_at"], last_sample_at=usage["last_at"])
    return answer


class _bucket_index(FunctionElement):
    """Which ``seconds``-long bucket after ``start`` a timestamp falls in (0, 1, ...)."""

    type = sa.Integer()
    inherit_cache = True


@compiles(_bucket_index, "postgresql")
def _bucket_index_pg(element, compiler, **kw):
    start, at, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({at} - {start})) / {seconds}) AS INTEGER)"


@compiles(_bucket_index, "sqlite")
def _bucket_index_sqlite(element, compiler, **kw):
    start, at, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(ROUND((julianday({at}) - julianday({start})) * 86400.0) / {seconds} AS INTEGER)"


def node_gpu_series(db, *, start: datetime, end: datetime, bucket_seconds: int) -> list[NodeGpuPoint]:
    """Per node, GPUs in use over [start, end) in buckets of ``bucket_seconds`` from ``start``.

    Read from the hourly rollups, so a bucket is a whole number of hours (3600, 86400...); only buckets
    with samples are returned, ordered by node and time.
    """
    if bucket_seconds <= 0 or bucket_seconds % HOUR_SECONDS:
        raise ValueError(f"bucket_seconds must be a positive multiple of {HOUR_SECONDS} (the rollups are hourly)")
    if end <= start:
        return []
    h = hourly.c
    bucket = _bucket_index(sa.bindparam("series_start", start.astimezone(UTC), type_=h.hour.type), h.hour,
                           sa.literal_column(str(int(bucket_seconds)))).label("bucket")
    query = (sa.select(h.node_name, h.gpu_uuid, bucket, sa.func.sum(h.samples), sa.func.sum(h.allocated_samples),
                       sa.func.sum(h.busy_samples), sa.func.sum(h.util_sum), sa.func.sum(h.util_samples))
             .where(h.hour >= start, h.hour < end, h.parent_uuid == "")
             .group_by(h.node_name, h.gpu_uuid, bucket))
    per_bucket: dict[tuple[str, int], list] = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0])
    for node, _gpu, index, count, allocated, busy, util_sum, util_samples in db.execute(query):
        point = per_bucket[(node, int(index))]
        point[0] += 1
        point[1] += allocated / count if count else 0.0
        point[2] += busy / count if count else 0.0
        point[3] += util_sum or 0.0
        point[4] += util_samples or 0
    return [NodeGpuPoint(node=node, bucket_start=start.astimezone(UTC) + timedelta(seconds=index * bucket_seconds),
                         gpus_total=total, gpus_allocated=round(allocated, 4), gpus_busy=round(busy, 4),
                         avg_util_percent=util_sum / util_samples if util_samples else None)
            for (node, index), (total, allocated, busy, util_sum, util_samples) in sorted(per_bucket.items())]


def node_gpu_now(db, *, now: datetime, settings: GpuSettings | None = None) -> list[NodeGpuNow]:
    """Per node, from each physical GPU's latest sample within ``stale_seconds`` of ``now``."""
    settings = _settings(settings)
    s = samples_table.c
    window = (s.sampled_at > now - timedelta(seconds=settings.stale_seconds), s.sampled_at <= now, s.parent_uuid == "")
    latest = (sa.select(s.node_name, s.gpu_uuid, sa.func.max(s.sampled_at).label("at")).where(*window)
              .group_by(s.node_name, s.gpu_uuid).subquery())
    query = sa.select(s.node_name, s.gpu_model, s.allocated, s.util_percent, s.active).join(
        latest, sa.and_(s.node_name == latest.c.node_name, s.gpu_uuid == latest.c.gpu_uuid,
                        s.sampled_at == latest.c.at)).where(*window)
    nodes: dict[str, list] = defaultdict(list)
    for node, model, allocated, util, active in db.execute(query):
        nodes[node].append((model, allocated, util, is_busy(util, active, settings.idle_threshold_percent)))
    answer = []
    for node, gpus in sorted(nodes.items()):
        utils = [u for _, _, u, _ in gpus if u is not None]
        answer.append(NodeGpuNow(
            node=node, gpus_total=len(gpus), gpus_allocated=sum(1 for _, a, _, _ in gpus if a),
            gpus_busy=sum(1 for *_, busy in gpus if busy),
            avg_util_percent=sum(utils) / len(utils) if utils else None,
            gpu_model=", ".join(sorted({m for m, *_ in gpus if m}))))
    return answer


def idle_gpu_sessions(db, *, now: datetime, settings: GpuSettings | None = None) -> list[IdleGpuSession]:
    """Running sessions flagged idle GPU, longest idle first; with their reclaim warning and stop time."""
    settings = _settings(settings)
    u, p = session_usage.c, sessions.c
    query = (sa.select(u.pod_uid, u.last_at, u.last_busy_at, u.first_util_at, u.warned_at, u.stop_requested_at,
                       p.user_name,
                       p.server_name, p.pod_name, p.node_name, p.gpu_count, p.namespace, p.gpu_model, p.ended_at)
             .join(sessions, p.pod_uid == u.pod_uid)
             .where(p.ended_at.is_(None), p.gpu_count > 0,
                    u.last_at >= now - timedelta(seconds=settings.stale_seconds)))
    answer = []
    for row in db.execute(query):
        r = row._mapping
        since, flagged = idle_state(usage=r, ended_at=r["ended_at"], gpu_count=r["gpu_count"], now=now,
                                    settings=settings)
        if not flagged:
            continue
        warned = r["warned_at"] if r["warned_at"] is not None and r["warned_at"] >= since else None
        stop_at = (warned + timedelta(seconds=settings.reclaim_warning_seconds)
                   if warned is not None and settings.reclaim_enabled else None)
        answer.append(IdleGpuSession(
            pod_uid=r["pod_uid"], user_name=r["user_name"], server_name=r["server_name"], pod_name=r["pod_name"],
            node_name=r["node_name"], gpu_count=r["gpu_count"], idle_since=since, warned_at=warned, stop_at=stop_at,
            namespace=r["namespace"], gpu_model=r["gpu_model"], stop_requested_at=r["stop_requested_at"]))
    return sorted(answer, key=lambda s: (s.idle_since, s.pod_uid))
