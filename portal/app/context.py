"""Everything a request may need, built once per application (no import-time globals)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from fastapi import Request

from portal.app.auth.cookies import CookieSigner
from portal.app.auth.hub import HubClient
from portal.app.auth.sessions import SessionStore
from portal.app.auth.tokens import TokenStore
from portal.app.metrics import Metrics
from portal.app.pages.fast_path import PageIndex
from portal.app.pages.render_queue import RenderQueue
from portal.app.services.errors import KubeUnavailable
from portal.app.services.view_cache import ViewCache
from portal.app.settings import WebSettings
from portal.gpu.settings import GpuSettings
from portal.settings import PortalSettings


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PortalContext:
    settings: PortalSettings
    web: WebSettings
    engine: sa.Engine
    signer: CookieSigner
    tokens: TokenStore
    hub: HubClient | None
    metrics: Metrics
    sessions: SessionStore
    kube_factory: Callable[[], object] | None = None  # returns a kubernetes ApiClient
    live_pods_factory: Callable[..., object] | None = None  # (ApiClient, settings) -> LivePods (the factory's)
    storage_cache_factory: Callable[[], object] | None = None  # -> ScanCache (set by the factory)
    agents: object | None = None  # AgentTokenReviewer with PORTAL_AGENT_AUTH=kubernetes (auth/agents.py)
    clock: Callable[[], datetime] = utcnow
    collector: object | None = None  # the running Collector, when this process runs one
    syncer: object | None = None  # the running MysqlSyncer, likewise
    workers: dict[str, threading.Thread] = field(default_factory=dict)
    gpu: GpuSettings = field(default_factory=GpuSettings.model_construct)  # GPU utilisation and reclaim
    views: ViewCache = field(default_factory=lambda: ViewCache(0))  # the factory sets the configured one
    pages: ViewCache = field(default_factory=lambda: ViewCache(0))  # rendered pages (portal.app.pages.cache)
    renders: RenderQueue = field(default_factory=RenderQueue)  # where pages not yet in ``pages`` are rendered
    page_index: PageIndex = field(default_factory=PageIndex)  # cached pages answered before routing (fast_path)
    _live_pods: object | None = field(default=None, repr=False)
    _storage_cache: object | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def live_pods(self):
        """The live pod view, made on first use, so that the portal starts without a cluster."""
        with self._lock:
            if self._live_pods is None:
                if self.kube_factory is None or self.live_pods_factory is None:
                    raise KubeUnavailable("no Kubernetes access is configured")
                try:
                    api_client = self.kube_factory()
                except Exception as exc:  # a missing kubeconfig, no service account...
                    raise KubeUnavailable(f"cannot configure the Kubernetes client: {exc}") from None
                self._live_pods = self.live_pods_factory(api_client, self.settings)
            return self._live_pods

    def worker_alive(self, name: str) -> bool:
        worker = self.workers.get(name)
        return worker is not None and worker.is_alive()

    def storage_cache(self):
        """Measurements of storage directories shared by listing requests (see ScanCache)."""
        with self._lock:
            if self._storage_cache is None and self.storage_cache_factory is not None:
                self._storage_cache = self.storage_cache_factory()
            return self._storage_cache


def get_context(request: Request) -> PortalContext:
    return request.app.state.portal


async def context_dependency(request: Request) -> PortalContext:
    """``get_context`` as a dependency: async, so FastAPI does not send it to the thread pool."""
    return request.app.state.portal
