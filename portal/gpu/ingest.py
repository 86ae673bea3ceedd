"""Store one agent batch and roll it up, in one transaction.

Raw rows are inserted with ON CONFLICT DO NOTHING on their key (node, device, instant); only the rows
that were new are added to the rollups, so a batch sent again (its response was lost) changes nothing.
Holders named by the kubelet (namespace + pod name) are resolved to the session (pod UID) that ran then.
A sample without a utilisation but with an ``active`` flag (a MIG slice without GPM) counts as busy or idle
by that flag: it starts a session's idle clock and, when active, resets it.

A GPU in MIG mode has no utilisation of its own (NVML gives none); its work is on its slices. Its row's
``active`` is derived here, from the slices of the same instant in the batch: true when any of them is busy
(a utilisation at or above the threshold, or, without one, its own ``active`` flag), false when all that have
a reading are idle, left as sent (none) when no slice has one. This is done at ingest, not at query time,
because the hourly rollups keep only counts per device: "GPU busy" means *some* slice busy *at that instant*,
which the slices' separate hourly counts cannot tell (two slices busy 30 of 60 samples each make a GPU busy
for 30 to 60 of them). Deriving it once per new row keeps the series a plain read of ``busy_samples`` and
costs one pass over the batch. It relies on the agent sending one round (a GPU and its slices, one instant)
in one batch (portal/agent/sender.py keeps rounds whole), as ``allocated`` already does; a batch re-sent
derives the same rows and inserts none of them again. The parent's utilisation stays None: a slice's SM
utilisation is a share of the slice, not of the GPU, so averages stay over GPUs that read their own.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from portal.gpu.models import GpuHourly, GpuSample, GpuSessionUsage
from portal.gpu.schema import BatchIn, SampleIn
from portal.models import PodSession
from portal.sqltypes import column_in

samples_table = GpuSample.__table__
session_usage = GpuSessionUsage.__table__
hourly = GpuHourly.__table__
sessions = PodSession.__table__
MAX_CLOCK_SKEW = timedelta(minutes=5)


class BatchRefused(ValueError):
    """The batch cannot be stored as sent (e.g. samples from the future); the message says why."""


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int


def ingest_batch(connection: sa.Connection, *, batch: BatchIn, busy_threshold_percent: float,
                 now: datetime) -> IngestResult:
    """Store ``batch`` in the caller's transaction and add its new samples to the rollups."""
    if not batch.samples:
        return IngestResult(0, 0)
    late = max(s.at for s in batch.samples)
    if late > now + MAX_CLOCK_SKEW:
        raise BatchRefused(f"sample time {late.isoformat()} is in the future (check the clock of node {batch.node})")
    if connection.dialect.name == "postgresql":
        # Telemetry: the commit need not wait for its WAL flush (a database crash may lose the last fraction
        # of a second of samples, never consistency); this keeps a batch's latency off the disk.
        connection.execute(sa.text("SET LOCAL synchronous_commit = off"))
    uids = _resolve_holders(connection, batch.samples)
    rows = _raw_rows(batch, uids, busy_threshold_percent)
    unique = {(r["gpu_uuid"], r["sampled_at"]): r for r in rows}  # a batch naming one sample twice keeps one
    rows = list(unique.values())
    # executemany of one fixed statement: compiled once and cached (a multi-row VALUES is compiled per size)
    inserted = connection.execute(_sample_insert(connection.dialect.name), rows).all()
    new_keys = {(uuid, at.astimezone(UTC)) for uuid, at in inserted}
    new = [(i, sample, unique[(sample.uuid, sample.at.astimezone(UTC))]) for i, sample in _distinct(batch.samples)
           if (sample.uuid, sample.at.astimezone(UTC)) in new_keys]
    if new:
        _add_to_sessions(connection, new, uids, busy_threshold_percent)
        _add_to_hours(connection, batch.node, [row for _, _, row in new], busy_threshold_percent)
    return IngestResult(accepted=len(new), duplicates=len(rows) - len(new))


def _insert_for(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise NotImplementedError(f"the portal database must be PostgreSQL or SQLite, not {dialect}")
    return insert


@functools.cache
def _sample_insert(dialect: str) -> sa.Insert:
    return (_insert_for(dialect)(samples_table).on_conflict_do_nothing()
            .returning(samples_table.c.gpu_uuid, samples_table.c.sampled_at))


def _distinct(samples: list[SampleIn]) -> list[tuple[int, SampleIn]]:
    seen: dict[tuple[str, datetime], tuple[int, SampleIn]] = {}
    for i, sample in enumerate(samples):
        seen[(sample.uuid, sample.at.astimezone(UTC))] = (i, sample)
    return list(seen.values())


def _resolve_holders(connection: sa.Connection, samples: list[SampleIn]) -> dict[tuple[int, int], str]:
    """(sample index, holder index) -> pod UID, for holders that name one or that match a session."""
    wanted = {(h.namespace, h.pod) for s in samples for h in s.holders if h.pod_uid is None}
    found: dict[tuple[str, str], list[tuple[datetime, datetime | None, str]]] = defaultdict(list)
    if wanted:
        names = sorted({pod for _, pod in wanted})
        query = sa.select(sessions.c.namespace, sessions.c.pod_name, sessions.c.started_at, sessions.c.ended_at,
                          sessions.c.pod_uid).where(column_in(connection, sessions.c.pod_name, names))
        for namespace, pod, started, ended, uid in connection.execute(query):
            if (namespace, pod) in wanted:
                found[(namespace, pod)].append((started, ended, uid))
    resolved = {}
    for i, sample in enumerate(samples):
        for j, holder in enumerate(sample.holders):
            if holder.pod_uid is not None:
                resolved[(i, j)] = holder.pod_uid
                continue
            runs = [r for r in found.get((holder.namespace, holder.pod), ())
                    if r[0] <= sample.at + MAX_CLOCK_SKEW and (r[1] is None or r[1] >= sample.at - MAX_CLOCK_SKEW)]
            if runs:  # names are reused: the run that started last before the sample
                resolved[(i, j)] = max(runs)[2]
    return resolved


def _raw_rows(batch: BatchIn, uids: dict[tuple[int, int], str], threshold: float) -> list[dict]:
    held_parents: set[tuple[str, datetime]] = set()
    busy_parents: dict[tuple[str, datetime], bool] = {}  # (GPU, instant) -> any of its slices busy then
    for s in batch.samples:
        if s.parent_uuid:
            key = (s.parent_uuid, s.at)
            if s.holders:
                held_parents.add(key)
            if s.util_percent is not None or s.active is not None:
                busy_parents[key] = busy_parents.get(key, False) or is_busy(s.util_percent, s.active, threshold)
    rows = []
    for i, s in enumerate(batch.samples):
        pods = sorted({uids[(i, j)] for j in range(len(s.holders)) if (i, j) in uids})
        if s.util_percent is not None:
            active = None
        elif not s.parent_uuid and busy_parents:
            active = busy_parents.get((s.uuid, s.at), s.active)
        else:
            active = s.active
        rows.append({
            "node_name": batch.node, "gpu_uuid": s.uuid, "sampled_at": s.at.astimezone(UTC),
            "parent_uuid": s.parent_uuid or "", "gpu_model": s.model, "util_percent": s.util_percent,
            "memory_used_bytes": s.memory_used_bytes, "memory_total_bytes": s.memory_total_bytes,
            "power_watts": s.power_watts, "temperature_c": s.temperature_c, "active": active,
            "allocated": bool(s.holders) or (s.uuid, s.at) in held_parents, "pod_uids": ",".join(pods)[:1024],
        })
    return rows


def _bigger(current: sa.ColumnElement, incoming: sa.ColumnElement) -> sa.ColumnElement:
    """The larger of two values where either may be NULL (portable: no GREATEST on SQLite)."""
    return sa.case((current.is_(None), incoming), (incoming.is_(None), current), (incoming > current, incoming),
                   else_=current)


def _smaller(current: sa.ColumnElement, incoming: sa.ColumnElement) -> sa.ColumnElement:
    return sa.case((current.is_(None), incoming), (incoming.is_(None), current), (incoming < current, incoming),
                   else_=current)


def _max(values) -> object:
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _min(values) -> object:
    values = [v for v in values if v is not None]
    return min(values) if values else None


def is_busy(util: float | None, active: bool | None, threshold: float) -> bool:
    """A sample that proves activity: a utilisation at or above the threshold, or (none read) the active flag
    (a MIG slice's own; a MIG GPU's, derived from its slices in :func:`_raw_rows`)."""
    return util >= threshold if util is not None else active is True


def _per_pod(i: int, sample: SampleIn, uids: dict[tuple[int, int], str]
             ) -> dict[str, tuple[float | None, int, bool | None]]:
    """Session -> (utilisation, memory, active) of one sample: the holder's own figures where it has them
    (shared GPUs), else the device's; a holder naming the pod UID wins over one naming the same pod by name.
    ``active`` only where there is no utilisation."""
    chosen: dict[str, tuple[bool, float | None, int]] = {}
    for j, holder in enumerate(sample.holders):
        uid = uids.get((i, j))
        if uid is None or (uid in chosen and chosen[uid][0]):
            continue
        util = holder.util_percent if holder.util_percent is not None else sample.util_percent
        memory = holder.memory_bytes if holder.memory_bytes is not None else sample.memory_used_bytes
        chosen[uid] = (holder.pod_uid is not None, util, memory)
    return {uid: (util, memory, sample.active if util is None else None)
            for uid, (_, util, memory) in chosen.items()}


def _add_to_sessions(connection: sa.Connection, new: list[tuple[int, SampleIn, dict]],
                     uids: dict[tuple[int, int], str], threshold: float) -> None:
    per_pod: dict[str, list[tuple[datetime, float | None, int, bool | None]]] = defaultdict(list)
    for i, sample, row in new:
        for uid, (util, memory, active) in _per_pod(i, sample, uids).items():
            per_pod[uid].append((row["sampled_at"], util, memory, active))
    if not per_pod:
        return
    values = []
    for uid, points in sorted(per_pod.items()):
        utils = [(at, u) for at, u, _, _ in points if u is not None]
        observed = [(at, is_busy(u, a, threshold)) for at, u, _, a in points if u is not None or a is not None]
        values.append({
            "pod_uid": uid, "samples": len(points), "util_samples": len(utils),
            "util_sum": float(sum(u for _, u in utils)), "util_peak": _max(u for _, u in utils),
            "memory_sum_bytes": sum(m for _, _, m, _ in points),
            "memory_peak_bytes": max(m for _, _, m, _ in points),
            "first_at": min(at for at, *_ in points), "last_at": max(at for at, *_ in points),
            "first_util_at": _min(at for at, _ in observed),
            "last_busy_at": _max(at for at, busy in observed if busy),
        })
    connection.execute(_session_upsert(connection.dialect.name), values)


@functools.cache
def _session_upsert(dialect: str) -> sa.Insert:
    """Built once per dialect: constructing these ON CONFLICT statements costs more than running them."""
    statement = _insert_for(dialect)(session_usage)
    t, e = session_usage.c, statement.excluded
    return statement.on_conflict_do_update(index_elements=[t.pod_uid], set_={
        "samples": t.samples + e.samples, "util_samples": t.util_samples + e.util_samples,
        "util_sum": t.util_sum + e.util_sum, "util_peak": _bigger(t.util_peak, e.util_peak),
        "memory_sum_bytes": t.memory_sum_bytes + e.memory_sum_bytes,
        "memory_peak_bytes": _bigger(t.memory_peak_bytes, e.memory_peak_bytes),
        "first_at": _smaller(t.first_at, e.first_at), "last_at": _bigger(t.last_at, e.last_at),
        "first_util_at": _smaller(t.first_util_at, e.first_util_at),
        "last_busy_at": _bigger(t.last_busy_at, e.last_busy_at),
    })


def _add_to_hours(connection: sa.Connection, node: str, rows: list[dict], threshold: float) -> None:
    groups: dict[tuple[str, datetime], list[dict]] = defaultdict(list)
    for row in rows:
        hour = row["sampled_at"].replace(minute=0, second=0, microsecond=0)
        groups[(row["gpu_uuid"], hour)].append(row)
    values = []
    for (uuid, hour), group in sorted(groups.items()):
        utils = [r["util_percent"] for r in group if r["util_percent"] is not None]
        last = max(group, key=lambda r: r["sampled_at"])
        values.append({
            "node_name": node, "gpu_uuid": uuid, "hour": hour, "parent_uuid": last["parent_uuid"],
            "gpu_model": last["gpu_model"], "samples": len(group), "util_samples": len(utils),
            "util_sum": float(sum(utils)), "util_peak": _max(utils),
            "memory_sum_bytes": sum(r["memory_used_bytes"] for r in group),
            "memory_peak_bytes": max(r["memory_used_bytes"] for r in group),
            "memory_total_bytes": last["memory_total_bytes"],
            "allocated_samples": sum(1 for r in group if r["allocated"]),
            "busy_samples": sum(1 for r in group if is_busy(r["util_percent"], r["active"], threshold)),
        })
    connection.execute(_hourly_upsert(connection.dialect.name), values)


@functools.cache
def _hourly_upsert(dialect: str) -> sa.Insert:
    statement = _insert_for(dialect)(hourly)
    t, e = hourly.c, statement.excluded
    return statement.on_conflict_do_update(index_elements=[t.node_name, t.gpu_uuid, t.hour], set_={
        "parent_uuid": e.parent_uuid, "gpu_model": e.gpu_model, "samples": t.samples + e.samples,
        "util_samples": t.util_samples + e.util_samples, "util_sum": t.util_sum + e.util_sum,
        "util_peak": _bigger(t.util_peak, e.util_peak), "memory_sum_bytes": t.memory_sum_bytes + e.memory_sum_bytes,
        "memory_peak_bytes": _bigger(t.memory_peak_bytes, e.memory_peak_bytes),
        "memory_total_bytes": e.memory_total_bytes, "allocated_samples": t.allocated_samples + e.allocated_samples,
        "busy_samples": t.busy_samples + e.busy_samples,
    })


def prune_samples(connection: sa.Connection, *, now: datetime, retention: timedelta) -> int:
    """Delete raw samples older than the retention period (their rollups stay); returns how many."""
    result = connection.execute(sa.delete(samples_table).where(samples_table.c.sampled_at < now - retention))
    return result.rowcount or 0


def prune_hours(connection: sa.Connection, *, now: datetime, retention: timedelta) -> int:
    """Delete hourly rollups of hours that began before the retention period; returns how many."""
    result = connection.execute(sa.delete(hourly).where(hourly.c.hour < now - retention))
    return result.rowcount or 0
