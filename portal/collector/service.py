"""Assemble a Collector from the settings (used by ``python -m portal`` and by operators)."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from portal.collector.kube import PodSource, WatchScope, make_api_client
from portal.collector.pods import PodSpecHints
from portal.collector.runner import Collector
from portal.settings import PortalSettings


def hints_from_settings(settings: PortalSettings) -> PodSpecHints:
    return PodSpecHints(
        notebook_container=settings.notebook_container,
        gpu_resource=settings.gpu_resource,
        rdma_resource_prefix=settings.rdma_resource_prefix,
        gpu_model_label=settings.gpu_model_label,
        storage_size_bytes=settings.user_storage_bytes,
    )


def make_collector(settings: PortalSettings, *, engine: sa.Engine, api_client=None,
                   stop: threading.Event | None = None) -> Collector:
    """A Collector for the cluster the settings point at; call ``.run()`` in a thread of its own."""
    source = PodSource(api_client or make_api_client(settings), WatchScope.from_settings(settings),
                       gpu_model_label=settings.gpu_model_label)
    return Collector(
        source=source,
        engine=engine,
        zone=settings.zone,
        hints=hints_from_settings(settings),
        resync_interval=settings.resync_interval_seconds,
        heartbeat_interval=settings.heartbeat_interval_seconds,
        enqueue_export=True,  # also while MySQL is off: what changed meanwhile is sent once it is on
        stop=stop,
    )


def seed_database(settings: PortalSettings, *, engine: sa.Engine) -> list[str]:
    """Apply what the settings put in the database: the configured rates, when they changed since the last
    start (audited). Idempotent. Returns the GPU models whose prices changed ("" = the default)."""
    from datetime import UTC, datetime

    from portal.billing.rates import apply_configured_rates

    with engine.begin() as connection:
        return apply_configured_rates(connection, settings, now=datetime.now(UTC))


def make_mysql_syncer(settings: PortalSettings, *, engine: sa.Engine, stop: threading.Event | None = None):
    """The MySQL exporter when PORTAL_MYSQL_URL is set, else None; call ``.run()`` in its own thread."""
    if settings.mysql_url is None:
        return None
    from portal.db import make_engine
    from portal.mysql_sync import MysqlSyncer

    mysql = make_engine(settings.mysql_url.get_secret_value())
    return MysqlSyncer(engine, mysql, interval=settings.mysql_sync_interval_seconds, stop=stop)
