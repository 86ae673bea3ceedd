"""GPU samples from the node agents, and the notices a signed-in user sees on the hub page.

  POST /api/gpu/samples   GPU agents only; one node's batch, idempotent: samples already stored are
                          reported as duplicates, not counted again. In the cluster (PORTAL_AGENT_AUTH=
                          kubernetes) an agent's ServiceAccount token is bound to its node: a batch for
                          another node is refused (403, logged) and nothing of it is stored. For a trial
                          without Kubernetes, agent-role API tokens (PORTAL_API_TOKENS) may send any node's.
  GET  /api/me/notices    the signed-in user's notices, e.g. a server whose GPUs sit idle and when
                          idle-GPU reclaim will stop it. Sessions and the user's own hub token work; a
                          browser on the hub's page (PORTAL_HUB_PUBLIC_URL's origin) may read it with
                          credentials (CORS for that origin only):
    {"notices": [{"kind": "idle-gpu", "server_name": "", "pod_name": "jupyter-alice", "gpu_count": 2,
                  "idle_since": "2026-05-20T02:00:00Z", "stop_at": "2026-05-20T05:00:00Z" | null,
                  "message": "Your server holds 2 GPUs that have been idle since 10:00 ..."}]}
  GET  /api/users/{username}/notices   the same answer for one user, for the hub's token (role "hub", which
                          shows them on the hub's own pages, asking server-side), admins, and the user
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from prometheus_client import Counter, Gauge
from pydantic import BaseModel

from portal.app.auth.guard import agent_token_allowed, authenticate, hub_token_allowed
from portal.app.auth.principal import Principal
from portal.app.context import PortalContext
from portal.app.deps import Context, CurrentUser
from portal.app.params import UserName
from portal.gpu.ingest import BatchRefused, ingest_batch
from portal.gpu.notices import user_notices
from portal.gpu.schema import BatchIn, BatchResult

log = logging.getLogger(__name__)
router = APIRouter(tags=["gpu"])
_metrics_lock = threading.Lock()


class _IngestMetrics:
    def __init__(self, registry) -> None:
        self.samples = Counter("portal_gpu_samples_total", "GPU samples received, by result (accepted, duplicate)",
                               ["result"], registry=registry)
        self.dropped = Gauge("portal_gpu_agent_dropped_samples", "Samples a node's agent dropped (buffer full), "
                             "as it last reported", ["node"], registry=registry)
        self.last_dropped: dict[str, int] = {}


def _gpu_metrics(ctx) -> _IngestMetrics:
    """This app's GPU ingest series, made on first use in its own registry."""
    with _metrics_lock:
        made = getattr(ctx.metrics, "gpu_ingest", None)
        if made is None:
            made = ctx.metrics.gpu_ingest = _IngestMetrics(ctx.metrics.registry)
        return made


def require_agent(principal: Principal = Depends(authenticate)) -> Principal:
    if principal.role != "agent":
        raise HTTPException(403, "only GPU agent tokens may send samples")
    return principal


def check_node(ctx: PortalContext, principal: Principal, node: str) -> None:
    """A node-bound credential sends only its node's samples; an unbound one only where the portal takes those."""
    if principal.node is None:
        if ctx.web.agent_auth != "api-token":  # never, by the settings' check; kept so it stays so
            raise HTTPException(403, "only node-bound agent tokens may send samples here")
        return
    if node != principal.node:
        log.warning("GPU agent refused: a batch for another node", extra={
            "node": node, "token_node": principal.node, "pod": principal.pod, "principal": principal.name})
        raise HTTPException(403, f"this agent's token is bound to node {principal.node!r}; it may not send "
                                 f"samples for {node!r}")


@router.post("/api/gpu/samples", summary="Store one node's GPU samples (GPU agent tokens only)",
             response_model=BatchResult)
@agent_token_allowed
def post_samples(ctx: Context, body: BatchIn, principal: Principal = Depends(require_agent)) -> dict:
    check_node(ctx, principal, body.node)
    try:
        with ctx.engine.begin() as connection:
            result = ingest_batch(connection, batch=body, busy_threshold_percent=ctx.gpu.idle_threshold_percent,
                                  now=ctx.clock())
    except BatchRefused as exc:
        raise HTTPException(422, str(exc)) from None
    metrics = _gpu_metrics(ctx)
    metrics.samples.labels("accepted").inc(result.accepted)
    metrics.samples.labels("duplicate").inc(result.duplicates)
    if body.dropped_samples:
        with _metrics_lock:
            grew = body.dropped_samples > metrics.last_dropped.get(body.node, 0)
            metrics.last_dropped[body.node] = body.dropped_samples
        if grew:  # once per outage that cost samples, not with every batch after it
            log.warning("GPU agent dropped samples", extra={"node": body.node, "dropped": body.dropped_samples})
        metrics.dropped.labels(body.node).set(body.dropped_samples)
    return {"accepted": result.accepted, "duplicates": result.duplicates}


class Notice(BaseModel):
    kind: str
    server_name: str
    pod_name: str
    gpu_count: int
    idle_since: str
    stop_at: str | None
    message: str


class Notices(BaseModel):
    notices: list[Notice]


def _hub_origin(ctx) -> str | None:
    url = ctx.web.hub_public_url
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@router.get("/api/me/notices", summary="Your notices (idle GPUs and their reclaim), for the hub page",
            response_model=Notices)
def get_notices(ctx: Context, principal: CurrentUser, request: Request, response: Response) -> dict:
    origin = request.headers.get("origin")
    if origin is not None and origin == _hub_origin(ctx):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
    if not principal.is_user:
        return {"notices": []}
    return notices_of(ctx, principal.name)


@router.get("/api/users/{username}/notices", summary="A user's notices (the hub's token, admins, or the user)",
            response_model=Notices)
@hub_token_allowed
def get_user_notices(ctx: Context, username: UserName, principal: CurrentUser) -> dict:
    if not (principal.role == "hub" or principal.may_see(username)):
        raise HTTPException(403, "you may only see your own notices")
    return notices_of(ctx, username)


def notices_of(ctx: PortalContext, user_name: str) -> dict:
    with ctx.engine.connect() as connection:
        return {"notices": user_notices(connection, user_name=user_name, now=ctx.clock(), settings=ctx.gpu,
                                        zone=ctx.settings.zone)}
