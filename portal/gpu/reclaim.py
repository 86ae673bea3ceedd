"""Idle-GPU reclaim: warn the owner of a server flagged idle GPU, then stop it through the hub API.

Off by default (``PORTAL_GPU_RECLAIM_ENABLED``). One pass (:func:`reclaim_pass`) takes everything it
needs as parameters; :func:`run_gpu_worker` schedules it and the retention prune. A pass:
  1. clears the warning of every session that is no longer flagged (its GPUs computed, or it ended);
  2. with reclaim on, warns each newly flagged session (audited ``gpu.reclaim.warn``; the user sees it
     through GET /api/me/notices) and stops each one whose warning period is over: the flag is checked
     again right before the stop, so a server whose GPUs computed in the meantime is never stopped.
     The stop is audited (``gpu.reclaim.stop``, written as started before the hub is called).
Browser traffic plays no part: only GPU samples do.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import sqlalchemy as sa

from portal.app.services import audit
from portal.gpu.ingest import prune_samples
from portal.gpu.models import GpuSessionUsage
from portal.gpu.queries import IdleGpuSession, idle_gpu_sessions
from portal.gpu.settings import GpuSettings

log = logging.getLogger(__name__)
session_usage = GpuSessionUsage.__table__
ACTOR = "system:gpu-reclaim"


class HubRefused(Exception):
    """The hub did not stop the server; the message says what it answered."""


@dataclass
class HubServers:
    """Stops servers through the JupyterHub REST API with a token that has the ``servers`` scope."""

    api_url: str
    token: str
    timeout: float = 20.0
    transport: httpx.BaseTransport | None = None

    def stop(self, *, user: str, server: str) -> str:
        """Ask the hub to stop a server: "stopped", "stopping" (the hub answered 202), or "not-running"."""
        path = f"/users/{quote(user, safe='')}/server" + (f"s/{quote(server, safe='')}" if server else "")
        try:
            with httpx.Client(base_url=self.api_url, timeout=self.timeout, transport=self.transport,
                              headers={"Authorization": f"token {self.token}"}) as client:
                reply = client.delete(path)
        except httpx.HTTPError as exc:
            raise HubRefused(f"cannot reach the hub: {type(exc).__name__}") from None
        if reply.status_code == 204:
            return "stopped"
        if reply.status_code == 202:
            return "stopping"
        if reply.status_code in (400, 404):  # not running, or no such user/server: nothing to stop
            return "not-running"
        raise HubRefused(f"the hub answered {reply.status_code}: {reply.text[:200]}")


@dataclass
class ReclaimReport:
    flagged: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    cleared: int = 0
    failed: list[str] = field(default_factory=list)


def _target(session: IdleGpuSession) -> str:
    return f"{session.user_name}/{session.server_name}" if session.server_name else session.user_name


def _still_flagged(engine: sa.Engine, session: IdleGpuSession, *, now: datetime, settings: GpuSettings) -> bool:
    with engine.connect() as connection:
        return any(s.pod_uid == session.pod_uid and s.stop_at is not None and s.stop_at <= now
                   for s in idle_gpu_sessions(connection, now=now, settings=settings))


def reclaim_pass(engine: sa.Engine, *, settings: GpuSettings, now: datetime, hub: HubServers | None) -> ReclaimReport:
    report = ReclaimReport()
    with engine.connect() as connection:
        flagged = idle_gpu_sessions(connection, now=now, settings=settings)
    report.flagged = [s.pod_uid for s in flagged]
    u = session_usage.c
    with engine.begin() as connection:  # warnings of sessions that are no longer idle end here
        clear = sa.update(session_usage).where(u.warned_at.is_not(None)).values(warned_at=None)
        if flagged:
            clear = clear.where(u.pod_uid.not_in(report.flagged))
        report.cleared = connection.execute(clear).rowcount or 0
    if not settings.reclaim_enabled:
        return report
    for session in flagged:
        if session.warned_at is None:
            stop_at = now + timedelta(seconds=settings.reclaim_warning_seconds)
            with engine.begin() as connection:
                connection.execute(sa.update(session_usage).where(u.pod_uid == session.pod_uid).values(warned_at=now))
                audit.record(connection, actor=ACTOR, action="gpu.reclaim.warn", target=_target(session), at=now,
                             detail={"pod_uid": session.pod_uid, "pod": session.pod_name, "gpus": session.gpu_count,
                                     "idle_since": session.idle_since.isoformat(), "stop_at": stop_at.isoformat()})
            report.warned.append(session.pod_uid)
            if settings.reclaim_warning_seconds > 0:
                continue
        if session.stop_at is not None and session.stop_at > now:
            continue
        if session.stop_requested_at is not None and session.stop_requested_at >= (session.warned_at or now):
            continue  # asked already; the collector will see the pod end
        if hub is None or not _still_flagged(engine, session, now=now, settings=settings):
            continue
        _stop(engine, session, hub=hub, now=now, report=report)
    return report


def _stop(engine: sa.Engine, session: IdleGpuSession, *, hub: HubServers, now: datetime, report: ReclaimReport):
    detail = {"pod_uid": session.pod_uid, "pod": session.pod_name, "node": session.node_name,
              "gpus": session.gpu_count, "idle_since": session.idle_since.isoformat(),
              "warned_at": session.warned_at.isoformat() if session.warned_at else now.isoformat()}
    entry = audit.start(engine, actor=ACTOR, action="gpu.reclaim.stop", target=_target(session), detail=detail, at=now)
    try:
        result = hub.stop(user=session.user_name, server=session.server_name)
    except HubRefused as exc:
        audit.finish(engine, entry, detail={**detail, "error": str(exc)}, result="failed")
        log.warning("idle-GPU reclaim could not stop a server", extra={"target": _target(session), "error": str(exc)})
        report.failed.append(session.pod_uid)
        return
    with engine.begin() as connection:
        connection.execute(sa.update(session_usage).where(session_usage.c.pod_uid == session.pod_uid)
                           .values(stop_requested_at=now))
    audit.finish(engine, entry, detail=detail, result=result)
    log.info("idle-GPU reclaim stopped a server", extra={"target": _target(session), "result": result})
    report.stopped.append(session.pod_uid)


def hub_from_settings(settings: GpuSettings) -> HubServers | None:
    if not settings.reclaim_enabled or settings.reclaim_hub_api_url is None or settings.reclaim_hub_token is None:
        return None
    return HubServers(api_url=settings.reclaim_hub_api_url, token=settings.reclaim_hub_token.get_secret_value())


PRUNE_EVERY = timedelta(hours=1)


def run_gpu_worker(engine: sa.Engine, *, settings: GpuSettings, stop: threading.Event,
                   clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    """Until ``stop``: a reclaim pass every ``reclaim_interval_seconds``, the retention prune hourly."""
    hub = hub_from_settings(settings)
    last_prune: datetime | None = None
    while not stop.is_set():
        now = clock()
        if last_prune is None or now - last_prune >= PRUNE_EVERY:
            with engine.begin() as connection:
                pruned = prune_samples(connection, now=now, retention=timedelta(days=settings.sample_retention_days))
            if pruned:
                log.info("pruned raw GPU samples", extra={"rows": pruned})
            last_prune = now
        report = reclaim_pass(engine, settings=settings, now=now, hub=hub)
        if report.warned or report.stopped or report.failed:
            log.info("idle-GPU pass", extra={"flagged": len(report.flagged), "warned": len(report.warned),
                                             "stopped": len(report.stopped), "failed": len(report.failed)})
        stop.wait(settings.reclaim_interval_seconds)
