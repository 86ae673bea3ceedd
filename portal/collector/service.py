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
        enqueue_export=settings.mysql_url is not None,
        stop=stop,
    )
