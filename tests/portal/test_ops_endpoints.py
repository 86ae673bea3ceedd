"""Health, readiness (the database), Prometheus metrics, structured JSON logs, security headers, and a
database outage answered with 503 rather than a crash."""

from __future__ import annotations

import io
import json
import logging

import pytest
from portal_api_support import ADMIN_TOKEN, make_portal

pytest_plugins = ["conftest_api"]


def test_health_and_readiness(portal):
    client = portal.client()
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok", "database": "ok"}  # no collector in this process


def test_not_ready_while_the_database_is_down_and_the_api_says_503(migrated_pg_url, cluster, tmp_path,
                                                                    tcp_proxy_factory):
    proxy = tcp_proxy_factory(migrated_pg_url)
    made = make_portal(proxy.url_for(migrated_pg_url), cluster, tmp_path)
    client, admin, alice = made.client(), made.client(token=ADMIN_TOKEN), made.client("alice")
    assert client.get("/readyz").status_code == 200
    proxy.cut()
    try:
        reply = client.get("/readyz")
        assert reply.status_code == 503 and reply.json()["status"] == "unavailable"
        reply = admin.get("/api/billing")
        assert reply.status_code == 503 and "database is not available" in reply.json()["detail"]
        assert alice.get("/billing").status_code == 503  # a page, not a traceback
    finally:
        proxy.restore()
    assert client.get("/readyz").status_code == 200  # and back once it is
    made.engine.dispose()


def test_not_ready_before_the_schema_is_migrated(cluster, tmp_path):
    made = make_portal(f"sqlite:///{tmp_path / 'empty.db'}", cluster, tmp_path)
    reply = made.client().get("/readyz")
    assert reply.status_code == 503
    made.engine.dispose()


def test_metrics_count_requests_by_route_template_without_user_names(portal):
    admin = portal.client(token=ADMIN_TOKEN)
    admin.get("/api/limits/alice")
    admin.get("/api/limits/bob")
    admin.post("/api/pods/jhub/jupyter-zed/delete", json={"confirm": "jupyter-zed"})
    text = portal.client().get("/metrics").text
    assert 'portal_http_requests_total{method="GET",route="/api/limits/{username}",status="200"} 2.0' in text
    assert 'portal_admin_actions_total{action="pod.delete",result="refused"} 1.0' in text
    assert "alice" not in text and "bob" not in text and ADMIN_TOKEN not in text


@pytest.fixture
def json_logs():
    from portal.app.logs import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(level="info", fmt="json")
    stream = io.StringIO()
    root.handlers[0].stream = stream
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_access_logs_are_json_lines_without_query_strings(portal, json_logs):
    portal.client("alice").get("/api/sessions?month=2026-05")
    portal.client().get("/oauth_callback?code=secret-oauth-code&state=s")
    records = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    access = [r for r in records if r["logger"] == "portal.access"]
    first = access[0]
    assert (first["method"], first["path"], first["route"], first["status"], first["user"]) == (
        "GET", "/api/sessions", "/api/sessions", 200, "alice")
    assert first["level"] == "info" and first["time"].endswith("+00:00") and first["duration_ms"] >= 0
    assert "secret-oauth-code" not in json_logs.getvalue()


def test_pages_and_api_answers_carry_security_headers(portal):
    reply = portal.client("alice").get("/sessions")
    assert reply.headers["content-security-policy"].startswith("default-src 'none'")
    assert reply.headers["x-frame-options"] == "DENY" and reply.headers["cache-control"] == "no-store"
    assert portal.client().get("/api/me").headers["x-content-type-options"] == "nosniff"


def test_metrics_and_readiness_report_the_collector_and_the_mysql_export(portal, mysql_database_url,
                                                                         tcp_proxy_factory):
    """A collector whose watches expire twice, and an export whose MySQL is unreachable."""
    import threading
    import time

    from portal_test_kube import FakeKubeApi, gone
    from portal_test_pods import user_pod

    from portal.collector.kube import PodSource, WatchScope
    from portal.collector.pods import PodSpecHints
    from portal.collector.runner import Backoff, Collector
    from portal.db import make_engine
    from portal.mysql_sync import MysqlSyncer

    kube = FakeKubeApi(idle_watch_seconds=0.2)
    kube.lists = [([user_pod("alice", started="2026-05-20T02:00:00Z")], "100")]
    kube.watches = [[gone()], [gone()]]
    collector = Collector(source=PodSource(kube.api_client(), WatchScope(), gpu_model_label="nvidia.com/gpu.product"),
                          engine=portal.engine, zone=portal.ctx.settings.zone, hints=PodSpecHints(),
                          clock=lambda: portal.now, watch_backoff=Backoff(0.05, 0.1))
    proxy = tcp_proxy_factory(mysql_database_url)
    proxy.cut()
    mysql = make_engine(proxy.url_for(mysql_database_url))
    syncer = MysqlSyncer(portal.engine, mysql, interval=0.1, clock=lambda: portal.now)
    workers = {"collector": threading.Thread(target=collector.run, daemon=True),
               "mysql-sync": threading.Thread(target=syncer.run, daemon=True)}
    portal.ctx.collector, portal.ctx.syncer, portal.ctx.workers = collector, syncer, workers
    client = portal.client()
    assert client.get("/readyz").json()["collector"] == "stopped"  # not started yet
    for worker in workers.values():
        worker.start()
    try:
        deadline = time.monotonic() + 10
        while (collector.relists < 3 or syncer.failures_total < 1) and time.monotonic() < deadline:
            time.sleep(0.05)  # listed, expired, re-listed, expired again, re-listed after a backoff
        values = metric_values(client.get("/metrics").text)
        assert values["portal_collector_running"] == 1 and values["portal_collector_watch_expired_total"] == 2
        assert values["portal_collector_watch_errors_total"] == 2 and values["portal_collector_relists_total"] == 3
        assert values["portal_collector_db_retries_total"] == 0
        assert values["portal_collector_last_sync_timestamp_seconds"] == portal.now.timestamp()
        assert values["portal_mysql_outbox_sessions"] == 1  # alice's session waits for MySQL
        assert values["portal_mysql_export_failures_total"] >= 1 and values["portal_mysql_export_running"] == 1
        assert "portal_mysql_export_last_success_timestamp_seconds" not in values
        assert client.get("/readyz").json() == {"status": "ok", "database": "ok", "collector": "ok"}
    finally:
        collector.request_stop()
        syncer.stop.set()
        for worker in workers.values():
            worker.join(10)
        kube.close()
        mysql.dispose()
    reply = client.get("/readyz")
    assert reply.status_code == 503 and reply.json()["collector"] == "stopped"
    assert metric_values(client.get("/metrics").text)["portal_collector_running"] == 0


def metric_values(text: str) -> dict[str, float]:
    """Unlabelled series of a Prometheus text exposition."""
    return {name: float(value) for name, value in (line.split() for line in text.splitlines()
                                                   if line and not line.startswith("#") and "{" not in line)}
