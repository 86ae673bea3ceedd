"""Prometheus metrics, in a registry of the application's own (so tests can build many apps).

Labels are route templates (``/api/limits/{username}``), never concrete paths: no user names or tokens.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("portal_http_requests_total", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("portal_http_request_duration_seconds", "Time to answer HTTP requests",
                                 ["method", "route"], registry=self.registry)
        self.admin_actions = Counter("portal_admin_actions_total", "Admin actions by outcome",
                                     ["action", "result"], registry=self.registry)
        self.sign_ins = Counter("portal_sign_ins_total", "JupyterHub sign-ins by outcome", ["result"],
                                registry=self.registry)


class EngineMetrics:
    """The collector's and the MySQL export's health, read from the running workers at each scrape."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def describe(self):
        return []  # no fixed set: a portal without collector or export has none of their series

    def collect(self):
        collector, syncer = self.ctx.collector, self.ctx.syncer
        if collector is not None:
            yield _gauge("portal_collector_running", "1 while the collector thread runs",
                         self.ctx.worker_alive("collector"))
            for name, help_text, value in (
                    ("portal_collector_relists", "Full listings of the user pods", collector.relists),
                    ("portal_collector_watch_errors", "Watches or listings that failed (410 Gone included)",
                     collector.watch_errors),
                    ("portal_collector_watch_expired", "Watches that ended in 410 Gone", collector.watch_expired),
                    ("portal_collector_db_retries", "Database operations the collector retried", collector.db_retries)):
                yield CounterMetricFamily(name, help_text, value=value)
            if collector.heartbeat_at is not None:
                yield _gauge("portal_collector_last_sync_timestamp_seconds",
                             "When the collector was last in step with the cluster", collector.heartbeat_at.timestamp())
        if syncer is not None:
            yield _gauge("portal_mysql_export_running", "1 while the MySQL export thread runs",
                         self.ctx.worker_alive("mysql-sync"))
            yield CounterMetricFamily("portal_mysql_export_sessions", "Changed sessions sent to MySQL",
                                      value=syncer.exported_total)
            yield CounterMetricFamily("portal_mysql_export_failures", "MySQL exports that failed",
                                      value=syncer.failures_total)
            if syncer.last_success_at is not None:
                yield _gauge("portal_mysql_export_last_success_timestamp_seconds", "When an export last succeeded",
                             syncer.last_success_at.timestamp())
            outbox = self._outbox_size()
            if outbox is not None:
                yield _gauge("portal_mysql_outbox_sessions", "Changed sessions waiting for the MySQL export", outbox)

    def _outbox_size(self) -> int | None:
        from portal.models import MysqlOutbox

        try:
            with self.ctx.engine.connect() as connection:
                return connection.execute(sa.select(sa.func.count()).select_from(MysqlOutbox)).scalar_one()
        except sa.exc.SQLAlchemyError:
            return None  # the database is down: /readyz says so


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=float(value))


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "<unmatched>"


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = route_template(scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - started)
