"""Optional export of sessions to an external MySQL/MariaDB ``pod_report`` table.

One row per session, keyed by pod UID, so history is kept. Incremental: the collector queues every
changed session in ``mysql_outbox`` (always, also while no MySQL is configured, so that changes made
while the export was off are sent once it is on); a sync upserts the queued sessions (plus the open
ones, whose live time grows) into MySQL, and only after MySQL has committed does it remove exactly the
versions it sent. A MySQL outage therefore loses nothing (the queue waits) and duplicates nothing (the
key is the UID).
Times in MySQL are naive UTC (DATETIME has no zone).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.mysql import insert as mysql_insert

from portal.models import MysqlOutbox, PodSession, PortalMeta
from portal.rollups import GIB
from portal.sqltypes import upsert

log = logging.getLogger(__name__)
BOOTSTRAP_KEY = "mysql_export_bootstrapped"
_S, _O = PodSession.__table__, MysqlOutbox.__table__

report_metadata = sa.MetaData()
pod_report = sa.Table(
    "pod_report", report_metadata,
    sa.Column("pod_uid", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(255), nullable=False, index=True),  # the JupyterHub user name
    sa.Column("user_name", sa.String(255), nullable=False),
    sa.Column("namespace", sa.String(63), nullable=False),
    sa.Column("pod_name", sa.String(253), nullable=False),
    sa.Column("cpu_usage", sa.Float, nullable=False),  # requested CPU cores
    sa.Column("memory_usage", sa.Float, nullable=False),  # requested memory, GiB
    sa.Column("gpu_count", sa.Integer, nullable=False),
    sa.Column("storage_request", sa.Float),  # GiB, when known
    sa.Column("live_time", sa.BigInteger, nullable=False),  # seconds, start to end (or to the sync)
    sa.Column("created_at", sa.DateTime, nullable=False),  # session start
    sa.Column("updated_at", sa.DateTime, nullable=False),  # when this row was last written
    sa.Column("ended_at", sa.DateTime),  # session end; NULL while running
    mysql_charset="utf8mb4",
)


class PodReportSchemaError(RuntimeError):
    """The existing pod_report table lacks columns this export writes."""


def ensure_pod_report(mysql: sa.Engine) -> None:
    """Create pod_report if missing; refuse a table of another shape with a clear message."""
    report_metadata.create_all(mysql, checkfirst=True)
    present = {c["name"] for c in sa.inspect(mysql).get_columns("pod_report")}
    missing = sorted({c.name for c in pod_report.columns} - present)
    if missing:
        raise PodReportSchemaError(f"MySQL table pod_report lacks columns {missing}; add them or rename the table")


def _naive_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def report_row(session: sa.RowMapping, now: datetime) -> dict:
    """The pod_report row of one session, as of ``now``."""
    until = session["ended_at"] or now
    storage = session["storage_request_bytes"]
    return {
        "pod_uid": session["pod_uid"], "user_id": session["user_name"], "user_name": session["user_name"],
        "namespace": session["namespace"], "pod_name": session["pod_name"],
        "cpu_usage": float(session["cpu_request"]), "memory_usage": session["memory_request_bytes"] / GIB,
        "gpu_count": session["gpu_count"], "storage_request": None if storage is None else storage / GIB,
        "live_time": max(0, int((until - session["started_at"]).total_seconds())),
        "created_at": _naive_utc(session["started_at"]), "updated_at": _naive_utc(now),
        "ended_at": _naive_utc(session["ended_at"]),
    }


@dataclass(frozen=True)
class SyncResult:
    exported: int  # queued (changed) sessions sent
    refreshed_open: int  # open sessions whose live time was refreshed


def _bootstrap(connection: sa.Connection, now: datetime) -> None:
    """Queue every session once, the first time the export runs against this database."""
    if connection.execute(sa.select(PortalMeta.value).where(PortalMeta.key == BOOTSTRAP_KEY)).first():
        return
    queued = upsert(connection, _O).from_select(
        ["pod_uid", "version", "enqueued_at"],
        sa.select(_S.c.pod_uid, sa.literal(1), sa.literal(now, _O.c.enqueued_at.type)).where(sa.true()),
    ).on_conflict_do_nothing(index_elements=["pod_uid"])
    connection.execute(queued)
    connection.execute(sa.insert(PortalMeta.__table__).values(key=BOOTSTRAP_KEY, value=now.isoformat()))


def _queued(connection: sa.Connection, batch: int) -> list[sa.RowMapping]:
    return connection.execute(
        sa.select(_O.c.pod_uid, _O.c.version, _S).join(_S, _S.c.pod_uid == _O.c.pod_uid)
        .order_by(_O.c.pod_uid).limit(batch)
    ).mappings().all()


def sync_once(portal: sa.Engine, mysql: sa.Engine, *, now: datetime, batch: int = 1000) -> SyncResult:
    """Send queued sessions and refresh open ones. Raises on a MySQL error; nothing is lost then.

    A queued row always wins over the open row of the same session: the open sessions are read first,
    so a session the collector closes meanwhile is queued by then, and its queued (closed) state is what
    MySQL gets. Later batches are written after the first, so they too override what was sent before.
    """
    with portal.begin() as conn:
        _bootstrap(conn, now)
        open_rows = conn.execute(sa.select(_S).where(_S.c.ended_at.is_(None))).mappings().all()
    exported, refreshed = 0, {r["pod_uid"]: r for r in open_rows}
    while True:
        with portal.connect() as conn:
            queued = _queued(conn, batch)
        for row in queued:
            refreshed.pop(row["pod_uid"], None)
        rows_to_send = [report_row(r, now) for r in refreshed.values()] + [report_row(r, now) for r in queued]
        refreshed = {}  # open rows go with the first write only
        if rows_to_send:
            stmt = mysql_insert(pod_report)
            stmt = stmt.on_duplicate_key_update({c.name: stmt.inserted[c.name]
                                                 for c in pod_report.columns if c.name != "pod_uid"})
            with mysql.begin() as mconn:
                mconn.execute(stmt, rows_to_send)
        if queued:
            with portal.begin() as conn:  # only the versions MySQL now has; newer changes stay queued
                sent = [(r["pod_uid"], r["version"]) for r in queued]
                conn.execute(sa.delete(_O).where(sa.tuple_(_O.c.pod_uid, _O.c.version).in_(sent)))
            exported += len(queued)
        if len(queued) < batch:
            return SyncResult(exported, len(open_rows))


class MysqlSyncer:
    """Runs sync_once every ``interval`` seconds until ``stop``; a MySQL outage is logged and retried."""

    def __init__(self, portal: sa.Engine, mysql: sa.Engine, *, interval: float = 60.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 stop: threading.Event | None = None) -> None:
        self.portal, self.mysql, self.interval, self.clock = portal, mysql, interval, clock
        self.stop = stop or threading.Event()
        self.failures = 0  # in a row; 0 after a success
        self.failures_total = 0
        self.exported_total = 0
        self.last_success_at: datetime | None = None

    def run(self) -> None:
        schema_ready = False
        while not self.stop.is_set():
            try:
                if not schema_ready:
                    ensure_pod_report(self.mysql)
                    schema_ready = True
                now = self.clock()
                result = sync_once(self.portal, self.mysql, now=now)
                self.failures = 0
                self.exported_total += result.exported
                self.last_success_at = now
                log.info("MySQL export: %d changed, %d open", result.exported, result.refreshed_open)
                wait = self.interval
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
                self.failures += 1
                self.failures_total += 1
                wait = min(self.interval, 2.0 ** min(self.failures, 6))
                log.warning("MySQL export failed (%s); retrying in %.1fs", type(exc.orig).__name__, wait)
            self.stop.wait(wait)
