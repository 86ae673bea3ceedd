"""Nodes and pods as plain API JSON: kept current by a watch, or listed on demand.

`ClusterSource(watch=True)` keeps two of kubespawner's own `ResourceReflector`s (list, then watch, relisting
after every watch timeout or error) over all nodes and all non-terminated pods cluster-wide, so a form render
makes no Kubernetes API call. Until the first load completes, while a watch is refused (the reflectors retry on
their own), or after a reflector gave up (started again a minute later), it falls back to two lists per call,
so the form is never built from a stale copy. `watch=False` always lists.

RBAC: the hub's ServiceAccount needs cluster-wide `get`, `list` on nodes and pods, plus `watch` with the watch
(a ClusterRole; see hub/README.md).
"""

import asyncio
import json
import time

from kubespawner.reflector import MultiNamespaceResourceReflector

_ACTIVE = "status.phase!=Succeeded,status.phase!=Failed"


async def _list_json(call, timeout: float, **kwargs) -> list:
    # _preload_content=False returns the raw response: the dicts keep the API's own (camelCase) shape.
    response = await asyncio.wait_for(call(_preload_content=False, **kwargs), timeout)
    try:
        return json.loads(await response.read()).get("items") or []
    finally:
        response.release()


async def list_nodes_and_pods(spawner) -> tuple[list, list]:
    """All nodes, and every pod that has not terminated, cluster-wide: two list calls."""
    api, timeout = spawner.api, spawner.k8s_api_request_timeout
    return await asyncio.gather(
        _list_json(api.list_node, timeout),
        _list_json(api.list_pod_for_all_namespaces, timeout, field_selector=_ACTIVE),
    )


class _Namespaced:
    """A list response whose objects get `metadata.namespace: ""`.

    ResourceReflector keys what it keeps by "<namespace>/<name>"; nodes have no namespace."""

    def __init__(self, response):
        self._response = response
        self.content = self

    def __getattr__(self, name):
        return getattr(self._response, name)

    @staticmethod
    def _mark(obj):
        if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
            obj["metadata"].setdefault("namespace", "")

    async def read(self):
        data = json.loads(await self._response.read())
        for item in data.get("items") or []:
            self._mark(item)
        return json.dumps(data).encode()

    async def readline(self):  # the watch reads one event per line
        line = await self._response.content.readline()
        if not line.strip():
            return line
        event = json.loads(line)
        if event.get("type") != "ERROR":
            self._mark(event.get("object"))
        return json.dumps(event).encode() + b"\n"


class _ObservedApi:
    """The one list method a reflector calls (for its lists and its watches), noting whether the last watch
    was answered: a ServiceAccount without `watch` is refused at once, while kubespawner's reflector keeps
    retrying with backoff and serving its last list. Nodes get `metadata.namespace: ""` (see _Namespaced)."""

    def __init__(self, api, method: str, cluster_scoped: bool):
        self._api, self._method, self._cluster_scoped = api, method, cluster_scoped
        self.watch_failing = False
        setattr(self, method, self._call)

    async def _call(self, **kwargs):
        try:
            response = await getattr(self._api, self._method)(**kwargs)
        except Exception:
            if kwargs.get("watch"):
                self.watch_failing = True
            raise
        if kwargs.get("watch"):
            self.watch_failing = not response.ok
        return _Namespaced(response) if self._cluster_scoped else response


class NodeReflector(MultiNamespaceResourceReflector):
    kind = "nodes"
    list_method_name = "list_node"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.api = _ObservedApi(self.api, self.list_method_name, cluster_scoped=True)


class ActivePodReflector(MultiNamespaceResourceReflector):
    """Every pod in the cluster that has not terminated (what takes room on a node)."""

    kind = "pods"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.field_selector = _ACTIVE  # two conditions on one field: the `fields` dict cannot say it
        self.api = _ObservedApi(self.api, self.list_method_name, cluster_scoped=False)


class ClusterSource:
    """`await source(spawner)` -> (nodes, pods). See the module docstring."""

    # A watch ends after timeout_seconds and the reflector relists: long enough that 5,000 pods are not
    # relisted every few seconds, shorter than the network timeout so a quiet watch is not an error.
    reflector_settings = {"timeout_seconds": 50, "request_timeout": 60, "restart_seconds": 300}
    retry_seconds = 60  # after a failed start or a watch that gave up, list until then

    def __init__(self, watch: bool, list_cluster=list_nodes_and_pods):
        self.watch = watch
        self._list = list_cluster
        self._reflectors = None
        self._starting = None
        self._retry_at = 0.0
        self._warned = False
        self.log = None

    @property
    def _running(self) -> bool:
        return bool(self._reflectors) and all(r.watch_task and not r.watch_task.done() for r in self._reflectors)

    @property
    def watching(self) -> bool:
        """The reflectors loaded and their watches are answered: what they hold is current."""
        return self._running and all(not r.first_load_future.exception() and not r.api.watch_failing
                                     for r in self._reflectors)

    async def __call__(self, spawner) -> tuple[list, list]:
        if self.watch:
            self.log = spawner.log
            if not self._running and time.monotonic() >= self._retry_at:
                await self._start()
            if self.watching:
                self._warned = False
                nodes, pods = self._reflectors
                return list(nodes.resources.values()), list(pods.resources.values())
            if self._running and not self._warned:
                self._warned = True
                self.log.warning("jhub: the watch of nodes or pods is refused (does the hub's ClusterRole have "
                                 "the watch verb?); listing them at each form render meanwhile")
        # While a watch is refused the reflectors retry on their own (kubespawner's backoff); list meanwhile.
        return await self._list(spawner)

    async def _start(self):
        # Renders that arrive while the reflectors start wait for that one start.
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._start_reflectors())
        await asyncio.shield(self._starting)

    async def _start_reflectors(self):
        await self.stop()
        reflectors = []
        try:
            for cls in (NodeReflector, ActivePodReflector):
                reflector = cls(on_failure=self._gave_up, **self.reflector_settings)
                reflectors.append(reflector)
                await reflector.start()
            self._reflectors = reflectors
        except Exception as exc:  # RBAC without watch, API down: list instead, try again later
            self._retry_at = time.monotonic() + self.retry_seconds
            if self.log:
                self.log.warning("jhub: cannot watch nodes and pods (%s); listing them at each form render, "
                                 "retrying the watch in %ss", exc, self.retry_seconds)
            for reflector in reflectors:
                if reflector.first_load_future.done():
                    reflector.first_load_future.exception()  # seen here; nobody else awaits it
                await reflector.stop()

    def _gave_up(self):
        self._retry_at = time.monotonic() + self.retry_seconds
        if self.log:
            self.log.error("jhub: the watch of nodes and pods gave up; listing them until it restarts")

    async def stop(self):
        reflectors, self._reflectors = self._reflectors or [], None
        for reflector in reflectors:
            await reflector.stop()
