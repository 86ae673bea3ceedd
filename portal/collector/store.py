"""Writes the collector's session changes, set-based: one statement per batch, never per pod."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from portal.collector.core import SessionRecord
from portal.models import MysqlOutbox, PodSession
from portal.rollups import add_rollups, rollup_rows
from portal.sqltypes import column_in, rows_source, upsert

_SESSIONS = PodSession.__table__
_COLUMNS = [c.name for c in _SESSIONS.columns]
_MUTABLE = [name for name in _COLUMNS if name != "pod_uid"]
_ROLLUP_INPUT = ["user_name", "gpu_model", "started_at", "ended_at", "gpu_count", "cpu_request",
                 "memory_request_bytes"]
# SQLite allows at most 32766 bound variables in one statement.
_UID_CHUNK = 10_000


def _record(row: sa.RowMapping) -> SessionRecord:
    return SessionRecord(**{name: row[name] for name in _COLUMNS})


def load_known(connection: sa.Connection, listed_uids: Collection[str] = ()) -> dict[str, SessionRecord]:
    """The open sessions plus the stored sessions of ``listed_uids``: what reconcile() compares with.

    One statement for up to 10,000 listed pods.
    """
    uids = sorted(listed_uids)
    chunks = [uids[i:i + _UID_CHUNK] for i in range(0, len(uids), _UID_CHUNK)] or [[]]
    known: dict[str, SessionRecord] = {}
    for chunk in chunks:
        where = _SESSIONS.c.ended_at.is_(None)
        if chunk:
            where = sa.or_(where, column_in(connection, _SESSIONS.c.pod_uid, chunk))
        for row in connection.execute(sa.select(_SESSIONS).where(where)).mappings():
            known[row["pod_uid"]] = _record(row)
    return known


def write_changes(
    connection: sa.Connection,
    changes: Sequence[SessionRecord],
    *,
    zone: ZoneInfo,
    now: datetime,
    enqueue_export: bool = False,
) -> list[str]:
    """Upsert ``changes`` in one statement; roll up the sessions this write closed; queue them for export.

    Closed sessions are immutable: the upsert only touches rows that are still open, so a session is
    closed (and rolled up) exactly once however often its end is seen. Returns the UIDs written.
    """
    if not changes:
        return []
    rows = [c.as_row() for c in changes]
    source = rows_source(connection, _SESSIONS, rows, _COLUMNS)
    stmt = upsert(connection, _SESSIONS)
    if source is not None:
        stmt = stmt.from_select(_COLUMNS, source)
    stmt = stmt.on_conflict_do_update(
        index_elements=["pod_uid"],
        set_={name: stmt.excluded[name] for name in _MUTABLE},
        where=_SESSIONS.c.ended_at.is_(None),
    ).returning(_SESSIONS.c.pod_uid, *(_SESSIONS.c[name] for name in _ROLLUP_INPUT))
    written = connection.execute(stmt, None if source is not None else rows).mappings().all()
    add_rollups(connection, rollup_rows((row for row in written if row["ended_at"] is not None), zone))
    uids = sorted(row["pod_uid"] for row in written)
    if enqueue_export and uids:
        enqueue_for_export(connection, uids, now=now)
    return uids


def enqueue_for_export(connection: sa.Connection, uids: Sequence[str], *, now: datetime) -> None:
    """Mark sessions as changed for the MySQL export (one upsert; a repeat bumps the version)."""
    table = MysqlOutbox.__table__
    rows = [{"pod_uid": uid, "version": 1, "enqueued_at": now} for uid in uids]
    source = rows_source(connection, table, rows, ["pod_uid", "version", "enqueued_at"])
    stmt = upsert(connection, table)
    if source is not None:
        stmt = stmt.from_select(["pod_uid", "version", "enqueued_at"], source)
    stmt = stmt.on_conflict_do_update(
        index_elements=["pod_uid"],
        set_={"version": table.c.version + 1, "enqueued_at": stmt.excluded.enqueued_at},
    )
    connection.execute(stmt, None if source is not None else rows)
