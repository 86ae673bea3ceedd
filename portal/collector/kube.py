"""Kubernetes access for the collector: list and watch user pods as plain dicts (official client)."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from kubernetes import client, config, watch

from portal.settings import PortalSettings

log = logging.getLogger(__name__)


def make_api_client(settings: PortalSettings) -> client.ApiClient:
    """An API client from the service account (in a pod) or from a kubeconfig file."""
    configuration = client.Configuration()
    mode = settings.kube_config_mode
    if mode == "auto":
        mode = "in-cluster" if os.environ.get("KUBERNETES_SERVICE_HOST") else "kubeconfig"
    if mode == "in-cluster":
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(config_file=settings.kubeconfig, client_configuration=configuration)
    return client.ApiClient(configuration)


@dataclass(frozen=True)
class WatchScope:
    """Which pods are user pods: a label selector, the hub namespace and per-user namespaces."""

    hub_namespace: str = "jhub"
    label_selector: str = "component=singleuser-server"
    user_namespace_prefix: str | None = None
    user_namespace_label: str | None = None

    @classmethod
    def from_settings(cls, settings: PortalSettings) -> WatchScope:
        return cls(settings.hub_namespace, settings.pod_label_selector,
                   settings.user_namespace_prefix, settings.user_namespace_label)

    @property
    def cluster_wide(self) -> bool:
        """Per-user namespaces need a cluster-wide list/watch, filtered here by namespace."""
        return bool(self.user_namespace_prefix or self.user_namespace_label)


class PodSource:
    """Lists and watches the user pods in scope. Pods come back as the API's JSON dicts."""

    def __init__(self, api_client: client.ApiClient, scope: WatchScope, *, gpu_model_label: str,
                 page_size: int = 500) -> None:
        self._core = client.CoreV1Api(api_client)
        self.scope = scope
        self._gpu_model_label = gpu_model_label
        self._page_size = page_size
        self._labelled_namespaces: frozenset[str] = frozenset()
        self._watch_lock = threading.Lock()
        self._watch_response = None  # the open watch response, so that another thread can interrupt it
        self._interrupted = False

    def in_scope(self, namespace: str) -> bool:
        scope = self.scope
        return (namespace == scope.hub_namespace
                or bool(scope.user_namespace_prefix and namespace.startswith(scope.user_namespace_prefix))
                or namespace in self._labelled_namespaces)

    def _list_call(self, **kwargs):
        if self.scope.cluster_wide:
            return self._core.list_pod_for_all_namespaces(label_selector=self.scope.label_selector, **kwargs)
        return self._core.list_namespaced_pod(self.scope.hub_namespace, label_selector=self.scope.label_selector,
                                              **kwargs)

    def list_pods(self, *, request_timeout: float = 60) -> tuple[list[dict], str]:
        """Every user pod in scope now, and the resourceVersion to watch from."""
        if self.scope.user_namespace_label:
            body = _json(self._core.list_namespace(label_selector=self.scope.user_namespace_label,
                                                   _preload_content=False, _request_timeout=request_timeout))
            self._labelled_namespaces = frozenset(item["metadata"]["name"] for item in body.get("items") or [])
        pods: list[dict] = []
        token = None
        while True:
            extra = {"_continue": token} if token else {}
            body = _json(self._list_call(limit=self._page_size, _preload_content=False,
                                         _request_timeout=request_timeout, **extra))
            pods += [p for p in body.get("items") or [] if self.in_scope(p["metadata"].get("namespace", ""))]
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return pods, (body.get("metadata") or {}).get("resourceVersion", "")

    def node_gpu_models(self, *, request_timeout: float = 30) -> dict[str, str]:
        """GPU product per node from the node label; empty when nodes may not be read (RBAC)."""
        try:
            body = _json(self._core.list_node(_preload_content=False, _request_timeout=request_timeout))
        except client.ApiException as exc:
            log.warning("cannot list nodes for GPU models (HTTP %s); relying on pod nodeSelectors", exc.status)
            return {}
        models = {}
        for node in body.get("items") or []:
            model = ((node.get("metadata") or {}).get("labels") or {}).get(self._gpu_model_label)
            if model:
                models[node["metadata"]["name"]] = model
        return dict(sorted(models.items()))

    def claim_requests(self, *, request_timeout: float = 30) -> dict[tuple[str, str], int | None]:
        """Storage requested by each PersistentVolumeClaim in scope; empty when claims may not be read."""
        from portal.collector.pods import claim_request

        try:
            if self.scope.cluster_wide:
                response = self._core.list_persistent_volume_claim_for_all_namespaces(
                    _preload_content=False, _request_timeout=request_timeout)
            else:
                response = self._core.list_namespaced_persistent_volume_claim(
                    self.scope.hub_namespace, _preload_content=False, _request_timeout=request_timeout)
            body = _json(response)
        except client.ApiException as exc:
            log.warning("cannot list storage claims (HTTP %s); storage requests come from pods or settings",
                        exc.status)
            return {}
        return {(claim["metadata"].get("namespace", ""), claim["metadata"]["name"]): claim_request(claim)
                for claim in body.get("items") or [] if self.in_scope(claim["metadata"].get("namespace", ""))}

    def claim_request(self, namespace: str, name: str, *, request_timeout: float = 10) -> int | None:
        """Storage requested by one claim; None when it is missing or cannot be read (the session is still
        recorded: the storage request is a detail, never a reason to drop a watch event)."""
        from portal.collector.pods import claim_request

        try:
            return claim_request(_json(self._core.read_namespaced_persistent_volume_claim(
                name, namespace, _preload_content=False, _request_timeout=request_timeout)))
        except client.ApiException as exc:
            if exc.status != 404:
                log.warning("cannot read storage claim %s/%s (HTTP %s)", namespace, name, exc.status)
        except Exception as exc:  # a transport error: the next listing reads every claim again
            log.warning("cannot read storage claim %s/%s (%s)", namespace, name, type(exc).__name__)
        return None

    def watch(self, resource_version: str, *, timeout_seconds: int) -> Iterator[tuple[str, dict]]:
        """(type, object) watch events after ``resource_version``; ends when the server closes the watch.

        A 410 Gone (the version is too old) or an ERROR event raises ApiException; a dropped connection
        raises the transport error. The caller re-lists in every such case.
        """
        watcher = watch.Watch()

        def call(**kwargs):  # no return type on purpose: the client then hands out raw dicts
            response = self._list_call(**kwargs)
            with self._watch_lock:
                self._watch_response = response
                if self._interrupted:
                    _shutdown(response)
            return response

        stream = watcher.stream(
            call, resource_version=resource_version, timeout_seconds=timeout_seconds,
            allow_watch_bookmarks=True, _request_timeout=(10, timeout_seconds + 30),
        )
        try:
            for event in stream:
                obj = event["raw_object"]
                if event["type"] in ("ADDED", "MODIFIED", "DELETED") and not self.in_scope(
                        obj["metadata"].get("namespace", "")):
                    continue
                yield event["type"], obj
        finally:
            watcher.stop()
            with self._watch_lock:
                self._watch_response = None

    def interrupt(self) -> None:
        """End the watch in progress now, and any later one at once (called from another thread at shutdown:
        an idle watch otherwise blocks until the API server ends it, up to its timeout)."""
        with self._watch_lock:
            self._interrupted = True
            if self._watch_response is not None:
                _shutdown(self._watch_response)


def _shutdown(response) -> None:
    """Unblock a thread reading ``response``: shut the socket's reading side (urllib3 2)."""
    try:
        response.shutdown()
    except (AttributeError, ValueError, RuntimeError, OSError):
        try:
            response.close()
        except Exception:  # already closed: nothing left to unblock
            pass


def _json(response) -> dict:
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()
