"""Build the portal's FastAPI application from validated settings.

Authentication is the default: every router is mounted behind ``authenticate`` except the ones in
``PUBLIC_ROUTERS``, whose paths must be exactly ``PUBLIC_PATHS`` (checked here, and by a test that
walks every route):
  /healthz, /readyz, /metrics   probes and Prometheus scrapes arrive without credentials; no user data
  /login, /oauth_callback       the sign-in itself; the callback signs in only whom the hub vouches for
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from fastapi import Depends, FastAPI

from portal.app.auth.agents import AgentTokenReviewer, kube_token_review
from portal.app.auth.cookies import CookieSigner
from portal.app.auth.guard import authenticate
from portal.app.auth.hub import HubClient
from portal.app.auth.sessions import SessionStore
from portal.app.auth.tokens import TokenStore
from portal.app.context import PortalContext, utcnow
from portal.app.errors import install_error_handlers
from portal.app.headers import SecurityHeadersMiddleware
from portal.app.logs import AccessLogMiddleware
from portal.app.metrics import EngineMetrics, Metrics, MetricsMiddleware
from portal.app.pages import audit as audit_page
from portal.app.pages import limits as limits_page
from portal.app.pages import overview as overview_page
from portal.app.pages import pods as pods_page
from portal.app.pages import rates as rates_page
from portal.app.pages import static
from portal.app.pages import storage as storage_page
from portal.app.pages import usage as usage_pages
from portal.app.pages.cache import PAGE_CACHE_ENTRIES, InvalidateOnChangeMiddleware
from portal.app.pages.common import make_templates
from portal.app.pages.fast_path import CachedPageMiddleware
from portal.app.routes import audit, gpu, limits, login, openapi, ops, pods, rates, storage, usage
from portal.app.routing import walk
from portal.app.services.invalidation import clear_on_change
from portal.app.services.live_pods import LivePods
from portal.app.services.storage_view import ScanCache
from portal.app.services.view_cache import ViewCache
from portal.app.settings import WebSettings
from portal.db import engine_from_settings
from portal.gpu.settings import GpuSettings, load_gpu_settings
from portal.settings import PortalSettings

log = logging.getLogger(__name__)

PUBLIC_ROUTERS = (ops.router, login.public)
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/login", "/oauth_callback"})
# Requests are matched against the routers in this order, one route after another (no two routes overlap,
# which a test checks): the most asked for first, the GPU agents' samples, then the dashboard pages.
PROTECTED_ROUTERS = (
    gpu.router, overview_page.router, usage_pages.router,
    login.router, pods.router, limits.router, usage.router, rates.router, storage.router, audit.router,
    openapi.router, pods_page.router, limits_page.router, rates_page.router, storage_page.router,
    audit_page.router, static.router,
)


def default_kube_factory(settings: PortalSettings) -> Callable[[], object]:
    def make():
        from portal.collector.kube import make_api_client

        return make_api_client(settings)

    return make


def create_app(settings: PortalSettings, web: WebSettings, *, engine: sa.Engine | None = None,
               kube_factory: Callable[[], object] | None = None, hub_transport=None,
               clock: Callable[[], datetime] = utcnow, collector=None, syncer=None,
               workers=None, gpu: GpuSettings | None = None) -> FastAPI:
    """The portal app. ``collector``, ``syncer`` and their threads (``workers``, by name) are the running
    engine of this process, when it runs one: /metrics and /readyz report on them. ``gpu``: the GPU
    settings (default: read from ``PORTAL_GPU_*``)."""
    secret = web.session_secret.get_secret_value() if web.session_secret else None
    if secret is None:
        log.warning("PORTAL_SESSION_SECRET is not set: using a random one (sign-ins end at restart, "
                    "and replicas do not share them)")
        secret = secrets.token_urlsafe(48)
    metrics = Metrics()
    engine = engine or engine_from_settings(settings)
    signer = CookieSigner(secret, max_age=web.session_max_age_seconds, secure=web.secure_cookies)
    hub = HubClient(web, transport=hub_transport) if web.oauth_enabled else None
    ctx = PortalContext(
        settings=settings, web=web, engine=engine, signer=signer, tokens=TokenStore(web.api_tokens), hub=hub,
        metrics=metrics, sessions=SessionStore(engine, signer, hub, clock=clock, check_seconds=web.hub_check_seconds,
                                                   cache_seconds=web.session_cache_seconds),
        kube_factory=kube_factory or default_kube_factory(settings), clock=clock,
        live_pods_factory=LivePods, views=ViewCache(web.view_cache_seconds),
        pages=ViewCache(web.view_cache_seconds, max_entries=PAGE_CACHE_ENTRIES),
        storage_cache_factory=lambda: ScanCache(ttl_seconds=web.storage_scan_cache_seconds,
                                                budget=web.storage_walk_budget_entries,
                                                walk_limit=web.storage_walk_max_entries),
        collector=collector, syncer=syncer, workers=dict(workers or {}),
        gpu=gpu if gpu is not None else load_gpu_settings(),
    )
    if web.agent_auth == "kubernetes":
        ctx.agents = AgentTokenReviewer(audience=web.agent_audience, service_account=web.agent_service_account or "",
                                        cache_seconds=web.agent_token_cache_seconds,
                                        review_token=kube_token_review(ctx.kube_factory))
    metrics.registry.register(EngineMetrics(ctx))
    clear_on_change(engine, ctx.views, ctx.pages)  # a committed change to the data forgets what shows it
    app = FastAPI(title="jhub usage portal", version="1.0", docs_url=None, redoc_url=None, openapi_url=None,
                  description="Usage, billing, live pods, limits and storage of a jhub JupyterHub platform.")
    app.state.portal = ctx
    app.state.templates = make_templates(settings.zone)
    install_error_handlers(app)
    for router in PUBLIC_ROUTERS:
        app.include_router(router)
    for router in PROTECTED_ROUTERS:
        app.include_router(router, dependencies=[Depends(authenticate)])
    public = {r.path for router in PUBLIC_ROUTERS for r in router.routes}
    if public != PUBLIC_PATHS:  # a new public route must be added (and justified) deliberately
        raise RuntimeError(f"public routes changed: {sorted(public ^ PUBLIC_PATHS)}; update PUBLIC_PATHS and its test")
    _check_every_route_is_guarded(app)
    app.add_middleware(CachedPageMiddleware, ctx=ctx)  # innermost: the headers, metrics and log still apply
    app.add_middleware(InvalidateOnChangeMiddleware, ctx=ctx)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(AccessLogMiddleware)
    return app


def _check_every_route_is_guarded(app: FastAPI) -> None:
    """Refuse to build an app with a route that is neither public nor behind ``authenticate``."""
    for route in walk(app):
        if route.path in PUBLIC_PATHS:
            continue
        if authenticate not in route.dependency_calls:
            raise RuntimeError(f"route {route.path} is not behind authentication")
