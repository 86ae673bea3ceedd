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
    assert client.get("/readyz").json() == {"status": "ok", "database": "ok"}


def test_not_ready_while_the_database_is_down_and_the_api_says_503(migrated_pg_url, cluster, tmp_path,
                                                                    tcp_proxy_factory):
    proxy = tcp_proxy_factory(migrated_pg_url)
    made = make_portal(proxy.url_for(migrated_pg_url), cluster, tmp_path)
    client, admin = made.client(), made.client(token=ADMIN_TOKEN)
    assert client.get("/readyz").status_code == 200
    proxy.cut()
    try:
        reply = client.get("/readyz")
        assert reply.status_code == 503 and reply.json()["status"] == "unavailable"
        reply = admin.get("/api/billing")
        assert reply.status_code == 503 and "database is not available" in reply.json()["detail"]
        assert made.client("alice").get("/billing").status_code == 503  # a page, not a traceback
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
