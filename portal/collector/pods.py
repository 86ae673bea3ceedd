"""Read what the collector needs from one JupyterHub user pod (a Kubernetes Pod as a JSON dict). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity

USERNAME_KEY = "hub.jupyter.org/username"
SERVERNAME_KEY = "hub.jupyter.org/servername"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, slots=True)
class PodSpecHints:
    """Which names in a pod carry the facts; from the settings."""

    notebook_container: str = "notebook"
    gpu_resource: str = "nvidia.com/gpu"
    rdma_resource_prefix: str = "rdma/"
    gpu_model_label: str = "nvidia.com/gpu.product"
    storage_size_bytes: int | None = None  # the configured per-user storage size, when claims tell nothing


@dataclass(frozen=True, slots=True)
class PodObservation:
    """One user pod as the collector sees it at one moment."""

    uid: str
    namespace: str
    pod_name: str
    user_name: str
    server_name: str
    node_name: str | None
    image: str | None
    gpu_model: str
    cpu_request: float
    memory_request_bytes: int
    gpu_count: int
    rdma_count: int
    started_at: datetime | None  # earliest start of the notebook container; None until it runs
    terminated_at: datetime | None  # notebook container's terminated.finishedAt, if it has one now
    terminal: bool  # pod phase Succeeded/Failed: it will not run again
    deletion_at: datetime | None  # metadata.deletionTimestamp
    storage_request_bytes: int | None = None  # the user's storage: claims' requests, ephemeral-storage, setting


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp from the API as an aware UTC datetime."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _quantity(value: object) -> Decimal:
    return parse_quantity(value) if value not in (None, "") else Decimal(0)


def _resources(container: Mapping) -> dict[str, Decimal]:
    """Requests of one container, falling back to limits as Kubernetes does when a request is unset."""
    resources = container.get("resources") or {}
    merged = dict(resources.get("limits") or {})
    merged.update(resources.get("requests") or {})
    return {name: _quantity(value) for name, value in merged.items()}


def _notebook(items: list[Mapping], name: str) -> Mapping:
    for item in items:
        if item.get("name") == name:
            return item
    return items[0] if items else {}


def _container_times(status: Mapping) -> tuple[datetime | None, datetime | None]:
    """(earliest start, current finish) of a container status."""
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    running = state.get("running") or {}
    terminated = state.get("terminated") or {}
    starts = [parse_time(t) for t in (running.get("startedAt"), terminated.get("startedAt"), last.get("startedAt"))]
    starts = [t for t in starts if t is not None]
    return (min(starts) if starts else None), parse_time(terminated.get("finishedAt"))


def claim_names(pod: Mapping) -> list[tuple[str, str]]:
    """(namespace, claim name) of each PersistentVolumeClaim the pod mounts, sorted."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    names = {(meta.get("namespace") or "", (volume.get("persistentVolumeClaim") or {}).get("claimName"))
             for volume in spec.get("volumes") or []}
    return sorted((ns, name) for ns, name in names if name)


def claim_request(claim: Mapping) -> int | None:
    """The storage a PersistentVolumeClaim requests (spec.resources.requests.storage), in bytes."""
    requested = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    try:
        return int(parse_quantity(requested)) if requested not in (None, "") else None
    except ValueError:
        return None


def _storage_request(pod: Mapping, totals: Mapping[str, Decimal], hints: PodSpecHints,
                     claim_requests: Mapping[tuple[str, str], int | None]) -> int | None:
    """The claims' requests when any is known, else the ephemeral-storage request, else the setting."""
    claimed = [claim_requests.get(key) for key in claim_names(pod)]
    if any(size is not None for size in claimed):
        return sum(size for size in claimed if size is not None)
    if totals.get("ephemeral-storage"):
        return int(totals["ephemeral-storage"])
    return hints.storage_size_bytes


def observe_pod(
    pod: Mapping, *, hints: PodSpecHints = PodSpecHints(), node_gpu_models: Mapping[str, str] | None = None,
    claim_requests: Mapping[tuple[str, str], int | None] | None = None,
) -> PodObservation | None:
    """Turn a pod dict into a PodObservation; None for a pod that is not a user server pod.

    ``claim_requests``: the storage requested by the PersistentVolumeClaims known so far, by (namespace, name).
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    user_name = annotations.get(USERNAME_KEY) or labels.get(USERNAME_KEY)
    if not meta.get("uid") or not user_name:
        return None

    containers = spec.get("containers") or []
    totals: dict[str, Decimal] = {}
    for container in containers:
        for name, amount in _resources(container).items():
            totals[name] = totals.get(name, Decimal(0)) + amount
    gpu_count = int(totals.get(hints.gpu_resource, 0))
    rdma_count = int(sum(v for k, v in totals.items() if k.startswith(hints.rdma_resource_prefix)))
    node_name = spec.get("nodeName")
    gpu_model = ""
    if gpu_count:
        gpu_model = (spec.get("nodeSelector") or {}).get(hints.gpu_model_label) or (
            (node_gpu_models or {}).get(node_name or "", "")
        )

    notebook_status = _notebook(status.get("containerStatuses") or [], hints.notebook_container)
    started_at, terminated_at = _container_times(notebook_status)
    return PodObservation(
        uid=meta["uid"],
        namespace=meta.get("namespace") or "",
        pod_name=meta.get("name") or "",
        user_name=user_name,
        server_name=annotations.get(SERVERNAME_KEY) or labels.get(SERVERNAME_KEY) or "",
        node_name=node_name,
        image=_notebook(containers, hints.notebook_container).get("image"),
        gpu_model=gpu_model,
        cpu_request=float(totals.get("cpu", 0)),
        memory_request_bytes=int(totals.get("memory", 0)),
        gpu_count=gpu_count,
        rdma_count=rdma_count,
        started_at=started_at,
        terminated_at=terminated_at,
        terminal=status.get("phase") in TERMINAL_PHASES,
        deletion_at=parse_time(meta.get("deletionTimestamp")),
        storage_request_bytes=_storage_request(pod, totals, hints, claim_requests or {}),
    )
