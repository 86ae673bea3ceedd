"""The collector driven through the real kubernetes client against recorded API responses,
writing to a real PostgreSQL: list then watch, 410 Gone, a dropped connection, a restart, a DB outage.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from portal_test_kube import FakeKubeApi, claim, deleted, drop, gate, gone, modified
from portal_test_pods import user_pod

from portal.collector.kube import PodSource, WatchScope
from portal.collector.pods import PodSpecHints
from portal.collector.runner import Backoff, Collector
from portal.db import make_engine
from portal.meta import COLLECTOR_HEARTBEAT, COLLECTOR_SINCE, read_time
from portal.models import PodSession

ZONE = ZoneInfo("Asia/Taipei")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Clock:
    """The collector's clock seam: tests move time by hand."""

    def __init__(self, now: str) -> None:
        self.now = at(now)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def kube():
    api = FakeKubeApi(idle_watch_seconds=0.2)
    yield api
    api.close()


def start_collector(kube: FakeKubeApi, engine, clock: Clock, **scope) -> tuple[Collector, threading.Thread]:
    source = PodSource(kube.api_client(), WatchScope(**scope), gpu_model_label="nvidia.com/gpu.product")
    collector = Collector(source=source, engine=engine, zone=ZONE, hints=PodSpecHints(), clock=clock,
                          resync_interval=3600, heartbeat_interval=600,
                          db_backoff=Backoff(0.05, 0.2), watch_backoff=Backoff(0.05, 0.2))
    thread = threading.Thread(target=collector.run, daemon=True)
    thread.start()
    return collector, thread


def stop_collector(collector: Collector, thread: threading.Thread) -> None:
    collector.stop.set()
    thread.join(10)
    assert not thread.is_alive(), "the collector did not stop"


def wait_until(condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def heartbeat(engine) -> datetime | None:
    with engine.connect() as conn:
        return read_time(conn, COLLECTOR_HEARTBEAT)


def sessions(engine) -> dict[str, PodSession]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(PodSession.__table__)).mappings().all()
    return {row["pod_uid"]: row for row in rows}


def test_list_watch_gone_and_dropped_connection_give_exact_sessions(kube, pg_url):
    engine = make_engine(pg_url)
    kube.lists = [
        ([user_pod("alice"), user_pod("bob")], "100"),
        ([user_pod("alice"), user_pod("bob"), user_pod("carol", started="2025-03-01T03:00:00Z")], "200"),
        ([user_pod("alice"), user_pod("carol", started="2025-03-01T03:00:00Z")], "300"),
    ]
    bob_stopping = user_pod("bob", finished="2025-03-01T05:30:07Z", deletion="2025-03-01T05:30:37Z",
                            resource_version="201")
    kube.watches = [
        [modified(user_pod("carol", started="2025-03-01T03:00:00Z", resource_version="101")), gone()],
        [modified(bob_stopping), deleted(bob_stopping), drop()],
    ]
    clock = Clock("2025-03-01T06:00:00")
    collector, thread = start_collector(kube, engine, clock)
    try:
        wait_until(lambda: collector.relists >= 3, what="three listings (start, after 410, after the drop)")
    finally:
        stop_collector(collector, thread)

    rows = sessions(engine)
    assert sorted(rows) == ["uid-alice", "uid-bob", "uid-carol"]
    assert rows["uid-alice"]["started_at"] == at("2025-03-01T02:00:00") and rows["uid-alice"]["ended_at"] is None
    assert rows["uid-carol"]["started_at"] == at("2025-03-01T03:00:00")
    bob = rows["uid-bob"]
    assert (bob["started_at"], bob["ended_at"]) == (at("2025-03-01T02:00:00"), at("2025-03-01T05:30:07"))
    assert bob["end_source"] == "finished" and bob["end_approximate"] is False
    watches = [r for r in kube.urls() if "watch=true" in r]
    assert "resourceVersion=100" in watches[0] and "resourceVersion=200" in watches[1]
    assert "labelSelector=component%3Dsingleuser-server" in watches[0]
    engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_restart_mid_session_no_duplicate_and_end_bounded_by_last_seen(kube, backend, request):
    engine = make_engine(request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url"))
    kube.lists = [([user_pod("alice"), user_pod("bob")], "100")]
    clock = Clock("2025-03-01T04:00:00")
    collector, thread = start_collector(kube, engine, clock)
    wait_until(lambda: collector.relists >= 1 and len(sessions(engine)) == 2, what="first listing")
    stop_collector(collector, thread)  # the collector goes down; last heartbeat at 04:00

    # While it is down: bob's pod is deleted unseen, dave starts and alice keeps running.
    kube.lists = [([user_pod("alice"), user_pod("dave", started="2025-03-01T05:00:00Z")], "500")]
    clock.now = at("2025-03-01T07:00:00")
    collector, thread = start_collector(kube, engine, clock)
    wait_until(lambda: len(sessions(engine)) == 3, what="the reconcile after the restart")
    stop_collector(collector, thread)

    rows = sessions(engine)
    assert sorted(rows) == ["uid-alice", "uid-bob", "uid-dave"]  # alice's session is not duplicated
    assert rows["uid-alice"]["started_at"] == at("2025-03-01T02:00:00") and rows["uid-alice"]["ended_at"] is None
    assert rows["uid-alice"]["last_seen_at"] == at("2025-03-01T04:00:00")  # its row was not rewritten ...
    assert heartbeat(engine) == at("2025-03-01T07:00:00")  # ... the collector's one heartbeat row says it
    assert rows["uid-bob"]["ended_at"] == at("2025-03-01T04:00:00")  # its last-seen time, nothing later
    assert rows["uid-bob"]["end_approximate"] is True and rows["uid-bob"]["end_source"] == "last_seen"
    assert rows["uid-dave"]["started_at"] == at("2025-03-01T05:00:00")  # the true start, not 07:00
    engine.dispose()


def test_database_outage_during_collection_is_retried_without_crashing(kube, pg_url, tcp_proxy_factory):
    proxy = tcp_proxy_factory(pg_url)
    engine = make_engine(proxy.url_for(pg_url))
    direct = make_engine(pg_url)
    release = threading.Event()
    kube.lists = [([user_pod("alice")], "100")]
    kube.watches = [[gate(release), modified(user_pod("carol", started="2025-03-01T03:00:00Z",
                                                      resource_version="101"))]]
    clock = Clock("2025-03-01T06:00:00")
    collector, thread = start_collector(kube, engine, clock)
    try:
        wait_until(lambda: collector.relists >= 1, what="first listing")
        proxy.cut()  # the database goes away
        release.set()  # ... and carol's pod starts meanwhile
        wait_until(lambda: collector.db_retries >= 3, what="retries against the dead database")
        assert thread.is_alive(), "the collector crashed on a database outage"
        proxy.restore()
        wait_until(lambda: "uid-carol" in sessions(direct), what="carol's session after recovery")
    finally:
        stop_collector(collector, thread)
    rows = sessions(direct)
    direct.dispose()
    assert rows["uid-carol"]["started_at"] == at("2025-03-01T03:00:00")
    engine.dispose()


def test_user_namespaces_by_prefix_are_watched_cluster_wide(kube, pg_url):
    engine = make_engine(pg_url)
    kube.lists = [([user_pod("alice"), user_pod("erin", namespace="jhub-erin"),
                    user_pod("mallory", namespace="other-team")], "100")]
    collector, thread = start_collector(kube, engine, Clock("2025-03-01T06:00:00"), user_namespace_prefix="jhub-")
    try:
        wait_until(lambda: collector.relists >= 1, what="first listing")
    finally:
        stop_collector(collector, thread)
    assert sorted(sessions(engine)) == ["uid-alice", "uid-erin"]
    assert kube.urls()[0].startswith("/api/v1/pods?")
    engine.dispose()


def test_heartbeats_write_one_row_and_bound_the_end_of_pods_gone_while_down(kube, pg_url):
    engine = make_engine(pg_url)
    kube.lists = [([user_pod("alice"), user_pod("bob")], "100")]
    clock = Clock("2025-03-01T04:00:00")
    writes: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *args: writes.append(statement)
                    if not statement.lstrip().upper().startswith("SELECT") else None)
    collector, thread = start_collector(kube, engine, clock)
    try:
        wait_until(lambda: heartbeat(engine) == at("2025-03-01T04:00:00"), what="the first listing")
        writes.clear()
        clock.now = at("2025-03-01T04:30:00")  # the heartbeat is due (every 600 s), a resync is not
        wait_until(lambda: heartbeat(engine) == at("2025-03-01T04:30:00"), what="a heartbeat")
    finally:
        stop_collector(collector, thread)
    assert writes and all("portal_meta" in statement for statement in writes)  # no session row rewritten
    assert {row["last_seen_at"] for row in sessions(engine).values()} == {at("2025-03-01T04:00:00")}
    with engine.connect() as conn:
        assert read_time(conn, COLLECTOR_SINCE) == at("2025-03-01T04:00:00")

    # down until 07:00; bob's pod went away meanwhile: it ran until the last heartbeat, nothing later
    kube.lists = [([user_pod("alice")], "500")]
    clock.now = at("2025-03-01T07:00:00")
    collector, thread = start_collector(kube, engine, clock)
    wait_until(lambda: sessions(engine)["uid-bob"]["ended_at"] is not None, what="the reconcile after the restart")
    stop_collector(collector, thread)
    bob = sessions(engine)["uid-bob"]
    assert bob["ended_at"] == at("2025-03-01T04:30:00") and bob["end_approximate"] is True
    with engine.connect() as conn:
        assert read_time(conn, COLLECTOR_SINCE) == at("2025-03-01T04:00:00")  # kept from the first start
    engine.dispose()


def test_storage_requests_come_from_the_users_claims(kube, pg_url):
    engine = make_engine(pg_url)
    kube.claims = [claim("alice", "10Gi")]
    kube.lists = [([user_pod("alice")], "100")]
    carol = user_pod("carol", started="2025-03-01T03:00:00Z", resource_version="101")
    release = threading.Event()
    kube.watches = [[gate(release), modified(carol)]]
    collector, thread = start_collector(kube, engine, Clock("2025-03-01T06:00:00"))
    try:
        wait_until(lambda: "uid-alice" in sessions(engine), what="the first listing")
        kube.claims.append(claim("carol", "25Gi"))  # made by KubeSpawner after the listing, with her pod
        release.set()
        wait_until(lambda: "uid-carol" in sessions(engine), what="carol's session")
    finally:
        stop_collector(collector, thread)
    rows = sessions(engine)
    assert rows["uid-alice"]["storage_request_bytes"] == 10 * 1024**3
    assert rows["uid-carol"]["storage_request_bytes"] == 25 * 1024**3
    assert any(r.endswith("/persistentvolumeclaims/claim-carol") for r in kube.urls())
    engine.dispose()


def test_watches_that_keep_expiring_are_relisted_with_backoff(kube, pg_url):
    engine = make_engine(pg_url)
    kube.lists = [([user_pod("alice")], "100")]
    kube.watches = [[gone()] for _ in range(50)]  # every watch is refused at once: 410 Gone
    source = PodSource(kube.api_client(), WatchScope(), gpu_model_label="nvidia.com/gpu.product")
    collector = Collector(source=source, engine=engine, zone=ZONE, hints=PodSpecHints(),
                          clock=Clock("2025-03-01T06:00:00"), watch_backoff=Backoff(1.0, 1.0))
    thread = threading.Thread(target=collector.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: collector.watch_expired >= 2, what="two expired watches")
        time.sleep(0.5)
        # the first 410 is re-listed at once, the second waits for the backoff (1 s): not a tight loop
        assert (collector.relists, collector.watch_expired) == (2, 2)
        wait_until(lambda: collector.relists >= 3, what="the re-list after the backoff")
    finally:
        stop_collector(collector, thread)
    assert collector.watch_errors == collector.watch_expired >= 2
    engine.dispose()
