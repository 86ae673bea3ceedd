"""Helpers for the GPU tests: agent batches as the agent sends them, and sessions in pod_sessions."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from portal.gpu.schema import BatchIn
from portal.models import PodSession

T0 = datetime(2026, 5, 20, 0, 0, tzinfo=UTC)
GIB = 1024**3


def sample(uuid: str, at: datetime, *, util: float | None = 50.0, memory_gib: float = 10.0, holders=(),
           parent: str | None = None, model: str = "NVIDIA A100-SXM4-80GB", active: bool | None = None) -> dict:
    made = {"at": at.isoformat(), "uuid": uuid, "parent_uuid": parent, "model": model, "util_percent": util,
            "memory_used_bytes": int(memory_gib * GIB), "memory_total_bytes": 80 * GIB, "power_watts": 200.0,
            "temperature_c": 40.0, "holders": [dict(h) for h in holders]}
    if active is not None:  # as the agent sends it for a MIG slice without a utilisation reading
        made["active"] = active
    return made


def batch(node: str, samples: list[dict], batch_id: str | None = None) -> BatchIn:
    return BatchIn.model_validate({"node": node, "batch_id": batch_id or secrets.token_hex(8), "samples": samples})


def holder(pod: str, namespace: str = "jhub", container: str = "notebook") -> dict:
    return {"namespace": namespace, "pod": pod, "container": container}


def add_session(connection: sa.Connection, *, uid: str, user: str, pod: str | None = None, start: datetime = T0,
                end: datetime | None = None, gpus: int = 1, node: str = "gpu01", server: str = "") -> str:
    connection.execute(sa.insert(PodSession.__table__).values(
        pod_uid=uid, user_name=user, server_name=server, namespace="jhub", pod_name=pod or f"jupyter-{user}",
        node_name=node, image="img", gpu_model="NVIDIA-A100-SXM4-80GB" if gpus else "", cpu_request=1.0,
        memory_request_bytes=GIB, gpu_count=gpus, rdma_count=0, started_at=start, ended_at=end,
        end_source="finished" if end else None, end_approximate=False, last_seen_at=end or start))
    return uid


def every(start: datetime, end: datetime, seconds: float = 60) -> list[datetime]:
    out, at = [], start
    while at < end:
        out.append(at)
        at += timedelta(seconds=seconds)
    return out
