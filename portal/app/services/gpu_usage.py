"""What the GPU agent measured, for the pages: per node now and over time, idle-GPU sessions, and each
session's utilisation, read through portal.gpu.queries (the agent's rollups) with the portal's GPU settings
(so that pages and the reclaim pass agree on "idle"). Without samples (no agent deployed) the views are
empty and ``available`` is False: the pages then show allocation only and say why."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

log = logging.getLogger(__name__)

from portal.gpu import queries as gpu_queries
from portal.gpu.settings import GpuSettings


@dataclass
class AgentView:
    available: bool = False
    now: dict[str, tuple[int, float | None]] = field(default_factory=dict)  # node -> (GPUs busy, avg util %)
    totals: dict[str, int] = field(default_factory=dict)  # node -> GPUs the agent sees
    models: dict[str, str] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)  # node -> GPUs busy per bucket
    idle: list = field(default_factory=list)  # IdleGpuSession


def agent_reports(connection: sa.Connection) -> bool:
    """Whether any GPU agent ever sent samples here (the per-session usage table is never pruned)."""
    from portal.gpu.models import GpuSessionUsage

    return connection.execute(sa.select(GpuSessionUsage.__table__.c.pod_uid).limit(1)).first() is not None


def node_view(connection: sa.Connection, *, start: datetime, end: datetime, bucket_seconds: int,
              settings: GpuSettings) -> AgentView:
    if not agent_reports(connection):
        return AgentView()
    view = AgentView(available=True)
    for node in gpu_queries.node_gpu_now(connection, now=end, settings=settings):
        view.now[node.node] = (int(node.gpus_busy), node.avg_util_percent)
        view.totals[node.node] = int(node.gpus_total)
        view.models[node.node] = node.gpu_model
    buckets = max(int((end - start).total_seconds() // bucket_seconds), 1)
    for point in gpu_queries.node_gpu_series(connection, start=start, end=end, bucket_seconds=bucket_seconds):
        index = int((point.bucket_start - start).total_seconds() // bucket_seconds)
        if 0 <= index < buckets:
            view.series.setdefault(point.node, [0.0] * buckets)[index] = float(point.gpus_busy)
    view.series = dict(sorted(view.series.items()))
    view.idle = list(gpu_queries.idle_gpu_sessions(connection, now=end, settings=settings))
    return view


def session_usage(connection: sa.Connection, pod_uids: list[str], *, now: datetime, settings: GpuSettings) -> dict:
    """pod UID -> SessionGpuUsage (average and peak utilisation and memory, idle flag); sessions without
    samples are absent."""
    if not pod_uids:
        return {}
    return gpu_queries.session_gpu_usage(connection, pod_uids=pod_uids, now=now, settings=settings)


def week_summary(connection: sa.Connection, *, user: str, now: datetime, settings: GpuSettings) -> list[dict]:
    """Per GPU model, the user's GPU sessions of the last seven days and their average utilisation, weighted
    by samples ("your A100 averaged 3 % this week"); [] without the agent or without GPU sessions."""
    from portal.models import PodSession

    s = PodSession.__table__
    since = now - timedelta(days=7)
    rows = connection.execute(sa.select(s.c.pod_uid, s.c.gpu_model).where(
        s.c.user_name == user, s.c.gpu_count > 0, sa.or_(s.c.ended_at.is_(None), s.c.ended_at > since))).all()
    usage = session_usage(connection, [uid for uid, _ in rows], now=now, settings=settings)
    per_model: dict[str, list[float]] = {}
    for uid, model in rows:
        u = usage.get(uid)
        if u is None or not u.samples or u.avg_util_percent is None:
            continue
        acc = per_model.setdefault(model or "GPU", [0.0, 0.0, 0.0])
        acc[0] += u.avg_util_percent * u.samples
        acc[1] += u.samples
        acc[2] = max(acc[2], u.peak_util_percent or 0.0)
    return [{"gpu_model": model, "avg_util_percent": total / samples, "peak_util_percent": peak}
            for model, (total, samples, peak) in sorted(per_model.items()) if samples]
