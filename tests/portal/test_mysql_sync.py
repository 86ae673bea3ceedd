"""MySQL export against the real MariaDB: one row per session, incremental, and an outage (refused
connections, then a connection dropped in the middle of a sync) that loses and duplicates nothing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from portal.collector.core import SessionRecord
from portal.collector.store import write_changes
from portal.db import make_engine
from portal.models import MysqlOutbox
from portal.mysql_sync import MysqlSyncer, PodReportSchemaError, ensure_pod_report, pod_report, sync_once
from portal.settings import load_settings

ZONE = ZoneInfo("Asia/Taipei")
NOW = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
GIB = 1024**3


def record(uid: str, user: str, *, start="2025-03-01T02:00:00", end: str | None = None,
           storage: int | None = None) -> SessionRecord:
    started = datetime.fromisoformat(start).replace(tzinfo=UTC)
    ended = datetime.fromisoformat(end).replace(tzinfo=UTC) if end else None
    return SessionRecord(
        pod_uid=uid, user_name=user, server_name="", namespace="jhub", pod_name=f"jupyter-{user}", node_name="n1",
        image="img", gpu_model="", cpu_request=2.0, memory_request_bytes=8 * GIB, gpu_count=1, rdma_count=0,
        storage_request_bytes=storage, started_at=started, ended_at=ended, end_source="finished" if end else None,
        end_approximate=False, last_seen_at=ended or NOW,
    )


@pytest.fixture
def portal_db(pg_url):
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def mysql_url(mysql_database_url):
    engine = make_engine(mysql_database_url)
    pod_report.drop(engine, checkfirst=True)
    engine.dispose()
    return mysql_database_url


def report(mysql_url: str) -> dict[str, dict]:
    engine = make_engine(mysql_url)
    if not sa.inspect(engine).has_table("pod_report"):
        return {}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(pod_report)).mappings().all()
    engine.dispose()
    return {r["pod_uid"]: dict(r) for r in rows}


def queued(portal) -> int:
    with portal.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(MysqlOutbox)).scalar_one()


def write(portal, records, now=NOW) -> None:
    with portal.begin() as conn:
        write_changes(conn, records, zone=ZONE, now=now, enqueue_export=True)


def test_sessions_are_exported_one_row_each_with_history(portal_db, mysql_url):
    mysql = make_engine(mysql_url)
    ensure_pod_report(mysql)
    write(portal_db, [record("u1", "alice", end="2025-03-01T03:30:00", storage=10 * GIB), record("u2", "alice"),
                      record("u3", "bob", start="2025-03-01T01:00:00", end="2025-03-01T02:00:00")])
    result = sync_once(portal_db, mysql, now=NOW)
    assert (result.exported, result.refreshed_open) == (3, 1)
    rows = report(mysql_url)
    assert sorted(rows) == ["u1", "u2", "u3"]  # alice's two sessions are two rows: history is kept
    assert rows["u1"]["live_time"] == 5400 and rows["u1"]["ended_at"] == datetime(2025, 3, 1, 3, 30)
    assert rows["u2"]["live_time"] == 4 * 3600 and rows["u2"]["ended_at"] is None  # open: up to the sync
    assert (rows["u1"]["cpu_usage"], rows["u1"]["memory_usage"], rows["u1"]["gpu_count"]) == (2.0, 8.0, 1)
    assert rows["u1"]["user_name"] == "alice" and rows["u1"]["created_at"] == datetime(2025, 3, 1, 2, 0)
    assert rows["u1"]["storage_request"] == 10.0 and rows["u2"]["storage_request"] is None  # GiB, when known
    assert queued(portal_db) == 0

    # Incremental: nothing changed, so only the open session is refreshed.
    later = NOW + timedelta(hours=1)
    assert sync_once(portal_db, mysql, now=later) == type(result)(0, 1)
    assert report(mysql_url)["u2"]["live_time"] == 5 * 3600
    mysql.dispose()


def test_mysql_outage_then_catch_up_loses_and_duplicates_nothing(portal_db, mysql_url, tcp_proxy_factory):
    ensure_pod_report(make_engine(mysql_url))
    proxy = tcp_proxy_factory(mysql_url)
    mysql = make_engine(proxy.url_for(mysql_url))
    write(portal_db, [record("u1", "alice")])
    sync_once(portal_db, mysql, now=NOW)

    # MySQL goes away: syncs fail, the collector keeps writing.
    proxy.cut()
    write(portal_db, [record("u1", "alice", end="2025-03-01T05:00:00"), record("u2", "bob")])
    with pytest.raises(sa.exc.OperationalError):
        sync_once(portal_db, mysql, now=NOW)
    assert queued(portal_db) == 2  # nothing was dropped from the queue

    # MySQL is back, but the connection dies in the middle of the next sync's write.
    proxy.restore()
    cut_once = {"done": False}

    def cut_mid_sync(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO pod_report") and not cut_once["done"]:
            cut_once["done"] = True
            proxy.cut()
            proxy.restore()

    sa.event.listen(mysql, "before_cursor_execute", cut_mid_sync)
    with pytest.raises(sa.exc.OperationalError):
        sync_once(portal_db, mysql, now=NOW)
    assert queued(portal_db) == 2

    # The next sync catches up: every session once, the closed one with its real end.
    write(portal_db, [record("u3", "carol")])
    sync_once(portal_db, mysql, now=NOW)
    rows = report(mysql_url)
    assert sorted(rows) == ["u1", "u2", "u3"]
    assert rows["u1"]["ended_at"] == datetime(2025, 3, 1, 5, 0) and rows["u1"]["live_time"] == 3 * 3600
    assert queued(portal_db) == 0
    mysql.dispose()


def test_first_export_sends_the_history_written_before_it_was_enabled(portal_db, mysql_url):
    with portal_db.begin() as conn:  # collector ran without MySQL configured: nothing queued
        write_changes(conn, [record("old1", "alice", end="2025-02-01T00:00:00"), record("old2", "bob")],
                      zone=ZONE, now=NOW)
    mysql = make_engine(mysql_url)
    ensure_pod_report(mysql)
    sync_once(portal_db, mysql, now=NOW)
    assert sorted(report(mysql_url)) == ["old1", "old2"]
    mysql.dispose()


def test_a_foreign_pod_report_table_is_refused_clearly(mysql_url):
    mysql = make_engine(mysql_url)
    with mysql.begin() as conn:
        conn.execute(sa.text("CREATE TABLE pod_report (id INT PRIMARY KEY, user_name VARCHAR(50))"))
    with pytest.raises(PodReportSchemaError, match="pod_uid"):
        ensure_pod_report(mysql)
    with mysql.begin() as conn:
        conn.execute(sa.text("DROP TABLE pod_report"))
    mysql.dispose()


def test_syncer_keeps_running_through_an_outage(portal_db, mysql_url, tcp_proxy_factory):
    proxy = tcp_proxy_factory(mysql_url)
    proxy.cut()
    mysql = make_engine(proxy.url_for(mysql_url))
    write(portal_db, [record("u1", "alice")])
    syncer = MysqlSyncer(portal_db, mysql, interval=0.1, clock=lambda: NOW)
    thread = threading.Thread(target=syncer.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while syncer.failures < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert syncer.failures >= 1 and thread.is_alive()
        proxy.restore()
        deadline = time.monotonic() + 15
        while "u1" not in report(mysql_url) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "u1" in report(mysql_url)
    finally:
        syncer.stop.set()
        thread.join(10)
    mysql.dispose()


def test_a_session_closed_between_the_reads_of_a_sync_reaches_mysql_closed(portal_db, pg_url, mysql_url):
    """The collector closes u1 after the sync read the open sessions and before it read the queue: the
    queued (closed) row must win over the open row read a moment earlier, at once and for good."""
    mysql = make_engine(mysql_url)
    ensure_pod_report(mysql)
    write(portal_db, [record("u1", "alice")])
    sync_once(portal_db, mysql, now=NOW)  # exported as open; the queue is empty
    closed = {"done": False}

    def close_after_the_open_read(conn, cursor, statement, *args):
        if not closed["done"] and "mysql_outbox" in statement and "JOIN" in statement.upper():
            closed["done"] = True
            collector = make_engine(pg_url)  # another connection, as the collector's thread has
            write(collector, [record("u1", "alice", end="2025-03-01T05:00:00")])
            collector.dispose()

    sa.event.listen(portal_db, "before_cursor_execute", close_after_the_open_read)
    try:
        sync_once(portal_db, mysql, now=NOW + timedelta(minutes=1))
    finally:
        sa.event.remove(portal_db, "before_cursor_execute", close_after_the_open_read)
    assert closed["done"]
    row = report(mysql_url)["u1"]
    assert row["ended_at"] == datetime(2025, 3, 1, 5, 0) and row["live_time"] == 3 * 3600
    assert queued(portal_db) == 0
    sync_once(portal_db, mysql, now=NOW + timedelta(hours=5))  # and no later sync reopens it
    assert report(mysql_url)["u1"]["ended_at"] == datetime(2025, 3, 1, 5, 0)
    mysql.dispose()


def test_changes_made_while_the_export_was_off_are_sent_when_it_is_back(portal_db, pg_url, mysql_url):
    """The portal ran with MySQL, then without it for a while (its collector still queues), then with it."""
    from kubernetes import client
    from portal_test_pods import user_pod

    from portal.collector.service import make_collector

    mysql = make_engine(mysql_url)
    ensure_pod_report(mysql)
    write(portal_db, [record("uid-alice", "alice")])
    sync_once(portal_db, mysql, now=NOW)
    assert report(mysql_url)["uid-alice"]["ended_at"] is None

    without_mysql = load_settings(database_url=pg_url, timezone="Asia/Taipei")
    collector = make_collector(without_mysql, engine=portal_db, api_client=client.ApiClient())
    ended = user_pod("alice", finished="2025-03-01T05:00:00Z", phase="Succeeded")
    assert collector.handle_event("MODIFIED", ended) is not None  # alice's server ends: nobody exports
    collector.handle_event("MODIFIED", user_pod("bob", started="2025-03-01T04:00:00Z"))

    sync_once(portal_db, mysql, now=NOW + timedelta(hours=1))  # MySQL configured again
    rows = report(mysql_url)
    assert rows["uid-alice"]["ended_at"] == datetime(2025, 3, 1, 5, 0) and "uid-bob" in rows
    assert queued(portal_db) == 0
    mysql.dispose()
