"""Operations endpoints. Public on purpose (listed in portal.app.factory.PUBLIC_PATHS):
probes and Prometheus scrapes come without credentials, and these answers hold no user data."""

from __future__ import annotations

from functools import lru_cache

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from portal.app.context import get_context

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict:
    return {"status": "ok"}


@lru_cache(maxsize=1)
def schema_head() -> str | None:
    from alembic.script import ScriptDirectory

    from portal.db import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def collector_state(ctx) -> str | None:
    """ok | starting | out of sync since <time> | stopped; None when this process runs no collector.

    Only "stopped" (its thread has ended) makes the portal unready: with the Kubernetes API unreachable the
    pages still serve what was recorded, and the metrics say how stale it is."""
    collector = ctx.collector
    if collector is None:
        return None
    if not ctx.worker_alive("collector"):
        return "stopped"
    if collector.last_relist_at is None:
        return "starting"
    seen = collector.heartbeat_at
    if seen is not None and (ctx.clock() - seen).total_seconds() > 3 * collector.heartbeat_interval + 60:
        return f"out of sync since {seen.isoformat()}"
    return "ok"


@router.get("/readyz", summary="Readiness: the database answers, its schema is current, the collector runs")
def readyz(request: Request) -> Response:
    ctx = get_context(request)
    collector = collector_state(ctx)
    extra = {} if collector is None else {"collector": collector}
    if collector == "stopped":
        return JSONResponse({"status": "unavailable", "database": "not checked", **extra}, status_code=503)
    try:
        with ctx.engine.connect() as connection:
            version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except sa.exc.SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "database": type(getattr(exc, "orig", exc)).__name__,
                             **extra}, status_code=503)
    if version != schema_head():
        return JSONResponse({"status": "unavailable", "database": "schema is not at the latest migration",
                             **extra}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", **extra})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(get_context(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
