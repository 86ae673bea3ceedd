"""What a user is told about their servers' GPUs (read by the hub page through GET /api/me/notices)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from portal.gpu.queries import IdleGpuSession, idle_gpu_sessions
from portal.gpu.settings import GpuSettings


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def idle_message(session: IdleGpuSession, *, zone: ZoneInfo) -> str:
    server = f"Your server {session.server_name!r}" if session.server_name else "Your server"
    gpus, verb = ("1 GPU", "has") if session.gpu_count == 1 else (f"{session.gpu_count} GPUs", "have")
    text = f"{server} holds {gpus} that {verb} been idle since {_local(session.idle_since, zone)}."
    if session.stop_at is not None:
        text += (f" It will be stopped at {_local(session.stop_at, zone)} to free them, unless they compute "
                 "before then. Save your work.")
    else:
        text += " Please stop it when you no longer need the GPUs."
    return text


def user_notices(connection, *, user_name: str, now: datetime, settings: GpuSettings, zone: ZoneInfo) -> list[dict]:
    return [{"kind": "idle-gpu", "server_name": s.server_name, "pod_name": s.pod_name, "gpu_count": s.gpu_count,
             "idle_since": _iso(s.idle_since), "stop_at": _iso(s.stop_at) if s.stop_at else None,
             "message": idle_message(s, zone=zone)}
            for s in idle_gpu_sessions(connection, now=now, settings=settings) if s.user_name == user_name]
