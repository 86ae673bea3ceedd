"""GPU samples from the node agents, and the notices a signed-in user sees on the hub page.

  POST /api/gpu/samples   agent-role tokens only (PORTAL_API_TOKENS role "agent"); one node's batch,
                          idempotent: samples already stored are reported as duplicates, not counted again
  GET  /api/me/notices    the signed-in user's notices, e.g. a server whose GPUs sit idle and when
                          idle-GPU reclaim will stop it. Sessions and the user's own hub token work; a
                          browser on the hub's page (PORTAL_HUB_PUBLIC_URL's origin) may read it with
                          credentials (CORS for that origin only):
    {"notices": [{"kind": "idle-gpu", "server_name": "", "pod_name": "jupyter-alice", "gpu_count": 2,
                  "idle_since": "2026-05-20T02:00:00Z", "stop_at": "2026-05-20T05:00:00Z" | null,
                  "message": "Your server holds 2 GPUs that have been idle since 10:00 ..."}]}
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel

from portal.app.auth.guard import agent_token_allowed, authenticate
from portal.app.auth.principal import Principal
from portal.app.deps import Context, CurrentUser
from portal.gpu.ingest import BatchRefused, ingest_batch
from portal.gpu.notices import user_notices
from portal.gpu.schema import BatchIn, BatchResult

log = logging.getLogger(__name__)
router = APIRouter(tags=["gpu"])


def require_agent(principal: Principal = Depends(authenticate)) -> Principal:
    if principal.role != "agent":
        raise HTTPException(403, "only GPU agent tokens may send samples")
    return principal


@router.post("/api/gpu/samples", summary="Store one node's GPU samples (GPU agent tokens only)",
             response_model=BatchResult)
@agent_token_allowed
def post_samples(ctx: Context, body: BatchIn, principal: Principal = Depends(require_agent)) -> dict:
    try:
        with ctx.engine.begin() as connection:
            result = ingest_batch(connection, batch=body, busy_threshold_percent=ctx.gpu.idle_threshold_percent,
                                  now=ctx.clock())
    except BatchRefused as exc:
        raise HTTPException(422, str(exc)) from None
    if body.dropped_samples:
        log.warning("GPU agent dropped samples", extra={"node": body.node, "dropped": body.dropped_samples})
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
    with ctx.engine.connect() as connection:
        return {"notices": user_notices(connection, user_name=principal.name, now=ctx.clock(), settings=ctx.gpu,
                                        zone=ctx.settings.zone)}
