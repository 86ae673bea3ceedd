"""Running user pods, read live from the Kubernetes API (official client), and the guarded delete.

Live data rather than the collector's open sessions: a page that lists "what runs now" must show
pods that are still pulling images or terminating, and a delete must act on the pod as it is now.
Pods are read with the collector's own scope and parser, so both views agree on who owns what.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime

import urllib3
from kubernetes import client

from portal.app.services.errors import DomainError, KubeUnavailable
from portal.collector.kube import PodSource, WatchScope
from portal.collector.pods import PodSpecHints, observe_pod, parse_time
from portal.settings import PortalSettings

log = logging.getLogger(__name__)
USER_POD_LABEL = ("component", "singleuser-server")
TIMEOUT = 15


@dataclass(frozen=True)
class LivePod:
    uid: str
    namespace: str
    name: str
    user: str
    server_name: str
    node: str | None
    phase: str
    image: str | None
    gpu_model: str
    cpu: float
    memory_bytes: int
    gpus: int
    rdma: int
    created_at: datetime | None
    started_at: datetime | None
    terminating: bool

    def age_seconds(self, now: datetime) -> float | None:
        since = self.started_at or self.created_at
        return None if since is None else max((now - since).total_seconds(), 0.0)

    def as_json(self, now: datetime) -> dict:
        data = asdict(self)
        for key in ("created_at", "started_at"):
            data[key] = data[key].isoformat() if data[key] else None
        data["age_seconds"] = self.age_seconds(now)
        return data


class DeleteRefused(DomainError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason, status=status)


def selector_matches(selector: str | None, labels: dict) -> bool:
    """Whether labels satisfy a ``key=value[,key]`` selector (the forms the settings accept)."""
    for term in filter(None, (selector or "").split(",")):
        key, _, value = term.partition("=")
        if key not in labels or ("=" in term and labels[key] != value):
            return False
    return True


def _unavailable(exc: Exception) -> KubeUnavailable:
    if isinstance(exc, client.ApiException):
        return KubeUnavailable(f"the API server answered HTTP {exc.status} {exc.reason or ''}".strip())
    return KubeUnavailable(f"the API server did not answer ({type(exc).__name__})")


class LivePods:
    def __init__(self, api_client: client.ApiClient, settings: PortalSettings) -> None:
        self.settings = settings
        self.scope = WatchScope.from_settings(settings)
        self.hints = PodSpecHints(settings.notebook_container, settings.gpu_resource,
                                  settings.rdma_resource_prefix, settings.gpu_model_label)
        self.source = PodSource(api_client, self.scope, gpu_model_label=settings.gpu_model_label)
        self.core = client.CoreV1Api(api_client)
        self._nodes: tuple[float, dict[str, int]] | None = None

    def _to_live(self, raw: dict, gpu_models: dict[str, str]) -> LivePod | None:
        seen = observe_pod(raw, hints=self.hints, node_gpu_models=gpu_models)
        if seen is None:
            return None
        meta, status = raw.get("metadata") or {}, raw.get("status") or {}
        return LivePod(
            uid=seen.uid, namespace=seen.namespace, name=seen.pod_name, user=seen.user_name,
            server_name=seen.server_name, node=seen.node_name, phase=status.get("phase") or "Unknown",
            image=seen.image, gpu_model=seen.gpu_model, cpu=seen.cpu_request, memory_bytes=seen.memory_request_bytes,
            gpus=seen.gpu_count, rdma=seen.rdma_count, created_at=parse_time(meta.get("creationTimestamp")),
            started_at=seen.started_at, terminating=seen.deletion_at is not None,
        )

    def list(self, *, user: str | None = None) -> list[LivePod]:
        """User pods in the managed namespaces (all of them, or one user's), by namespace and name."""
        try:
            raw_pods, _ = self.source.list_pods(request_timeout=TIMEOUT)
            gpu_models = self.source.node_gpu_models(request_timeout=TIMEOUT)
        except (client.ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _unavailable(exc) from None
        pods = [p for p in (self._to_live(raw, gpu_models) for raw in raw_pods) if p is not None]
        if user is not None:
            pods = [p for p in pods if p.user == user]
        return sorted(pods, key=lambda p: (p.namespace, p.name))

    def node_gpus(self, *, max_age: float = 30.0) -> dict[str, int]:
        """Allocatable GPUs per node (nodes without GPUs included, as 0), read at most every ``max_age`` s."""
        now = time.monotonic()
        if self._nodes is not None and now - self._nodes[0] < max_age:
            return self._nodes[1]
        try:
            body = json.loads(self.core.list_node(_preload_content=False, _request_timeout=TIMEOUT).data)
        except (client.ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _unavailable(exc) from None
        gpus = {}
        for node in body.get("items") or []:
            allocatable = (node.get("status") or {}).get("allocatable") or {}
            try:
                gpus[node["metadata"]["name"]] = int(allocatable.get(self.settings.gpu_resource, 0))
            except (KeyError, TypeError, ValueError):
                continue
        self._nodes = (now, dict(sorted(gpus.items())))
        return self._nodes[1]

    def _managed_namespace(self, namespace: str) -> bool:
        scope = self.scope
        if namespace == scope.hub_namespace:
            return True
        if scope.user_namespace_prefix and namespace.startswith(scope.user_namespace_prefix):
            return True
        if scope.user_namespace_label:
            try:
                body = self.core.read_namespace(namespace, _request_timeout=TIMEOUT)
            except client.ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            return selector_matches(scope.user_namespace_label, body.metadata.labels or {})
        return False

    def delete(self, *, namespace: str, name: str, uid: str | None) -> LivePod:
        """Delete one user pod after checking that it is one; returns what was deleted.

        Raises DeleteRefused (with an HTTP status) when the pod is not a deletable user pod.
        The delete carries the pod's UID as a precondition, so a new pod of the same name is safe.
        """
        try:
            if not self._managed_namespace(namespace):
                raise DeleteRefused(403, f"namespace {namespace!r} is not managed by the portal")
            try:
                raw = self.core.read_namespaced_pod(name, namespace, _preload_content=False,
                                                    _request_timeout=TIMEOUT)
            except client.ApiException as exc:
                if exc.status == 404:
                    raise DeleteRefused(404, f"no pod {namespace}/{name}") from None
                raise
            body = json.loads(raw.data)
            labels = (body.get("metadata") or {}).get("labels") or {}
            if labels.get(USER_POD_LABEL[0]) != USER_POD_LABEL[1] or not selector_matches(
                    self.settings.pod_label_selector, labels):
                raise DeleteRefused(403, f"{namespace}/{name} is not a JupyterHub user pod "
                                         "(component=singleuser-server)")
            pod = self._to_live(body, {})
            if pod is None:
                raise DeleteRefused(403, f"{namespace}/{name} names no JupyterHub user")
            if uid is not None and uid != pod.uid:
                raise DeleteRefused(409, f"{namespace}/{name} is now a different pod (uid {pod.uid})")
            options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=pod.uid))
            try:
                self.core.delete_namespaced_pod(name, namespace, body=options, _request_timeout=TIMEOUT)
            except client.ApiException as exc:
                if exc.status == 404:
                    raise DeleteRefused(404, f"no pod {namespace}/{name} (already gone)") from None
                if exc.status == 409:
                    raise DeleteRefused(409, f"{namespace}/{name} changed while deleting; reload") from None
                raise
            return pod
        except (client.ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _unavailable(exc) from None
