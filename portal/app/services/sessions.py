"""Listing sessions (one run of one pod each) that overlap a range, newest first."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from portal.meta import COLLECTOR_HEARTBEAT, read_time
from portal.models import PodSession

_S = PodSession.__table__
GIB = 1024**3


def overlapping(connection: sa.Connection, *, start: datetime, end: datetime, user: str | None,
                limit: int, offset: int) -> tuple[int, list[dict]]:
    """(total, page) of sessions that ran at some time inside [start, end). An open session's last_seen_at
    is the collector's heartbeat when that is later (open rows are not rewritten on each heartbeat)."""
    where = _where(start=start, end=end, user=user)
    total = connection.execute(sa.select(sa.func.count()).select_from(_S).where(*where)).scalar_one()
    return int(total), _page(connection, where, limit=limit, offset=offset)


def latest(connection: sa.Connection, *, start: datetime, end: datetime, user: str | None, limit: int) -> list[dict]:
    """The ``limit`` latest sessions of ``overlapping``, without counting them all."""
    return _page(connection, _where(start=start, end=end, user=user), limit=limit, offset=0)


def _where(*, start: datetime, end: datetime, user: str | None) -> list:
    where = [_S.c.started_at < end, sa.or_(_S.c.ended_at.is_(None), _S.c.ended_at > start)]
    if user is not None:
        where.append(_S.c.user_name == user)
    return where


def _page(connection: sa.Connection, where: list, *, limit: int, offset: int) -> list[dict]:
    rows = connection.execute(
        sa.select(_S).where(*where).order_by(_S.c.started_at.desc(), _S.c.pod_uid).limit(limit).offset(offset))
    page = [dict(row._mapping) for row in rows]
    heartbeat = read_time(connection, COLLECTOR_HEARTBEAT)
    for row in page:
        if row["ended_at"] is None and heartbeat is not None and heartbeat > row["last_seen_at"]:
            row["last_seen_at"] = heartbeat
    return page


def as_json(row: dict, now: datetime) -> dict:
    end = row["ended_at"] or now
    return {
        "pod_uid": row["pod_uid"], "user": row["user_name"], "server_name": row["server_name"],
        "namespace": row["namespace"], "pod": row["pod_name"], "node": row["node_name"], "image": row["image"],
        "gpu_model": row["gpu_model"], "cpu": row["cpu_request"],
        "memory_gib": round(row["memory_request_bytes"] / GIB, 3), "gpus": row["gpu_count"],
        "rdma": row["rdma_count"], "started_at": row["started_at"].isoformat(),
        "ended_at": row["ended_at"].isoformat() if row["ended_at"] else None,
        "end_source": row["end_source"], "end_approximate": row["end_approximate"],
        "last_seen_at": row["last_seen_at"].isoformat(),
        "duration_seconds": round(max((end - row["started_at"]).total_seconds(), 0.0), 3),
        "open": row["ended_at"] is None,
    }
