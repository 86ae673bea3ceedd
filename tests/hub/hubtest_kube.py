"""The Kubernetes API as far as the hub uses it: list and watch nodes and pods, served from test data.

A Kubernetes API server cannot run here; kubespawner's real kubernetes_asyncio client (and its reflectors)
talk to this one over HTTP on 127.0.0.1. Lists carry a resourceVersion; a watch (`?watch=true`) replays the
events after the resourceVersion it asks for, then streams new ones until its `timeoutSeconds` (capped by
`watch_seconds`) runs out, as the API server does.
"""

import threading
import time
from urllib.parse import parse_qs

from hubtest_http import RecordingServer, Stream

KINDS = {"/api/v1/nodes": "nodes", "/api/v1/pods": "pods"}


class KubeApi(RecordingServer):
    def __init__(self, watch_seconds: float = 5.0):
        super().__init__()
        self.cluster = {"nodes": [], "pods": []}
        self.watch_seconds = watch_seconds
        self.version = 1
        self.events = []  # (resourceVersion, kind, event)
        self.refuse = {}  # path -> how many more list calls to answer 403 (a ServiceAccount without the verb)
        self.refuse_watch = False  # answer every watch 403, as for a ClusterRole without `watch`
        self._lock = threading.Lock()
        for path, kind in KINDS.items():
            self.route("GET", path, lambda req, kind=kind, path=path: self._answer_kind(req, kind, path))

    def list_calls(self) -> int:
        """List requests so far (watches not counted)."""
        return sum(1 for r in self.requests if r["path"] in KINDS and "watch=true" not in r["query"].lower())

    def publish(self, kind: str, event_type: str, obj: dict):
        """Change the cluster: ADDED / MODIFIED / DELETED `obj` (matched by name and namespace)."""
        with self._lock:
            self.version += 1
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.version)}}
            key = (obj["metadata"]["name"], obj["metadata"].get("namespace"))
            items = [o for o in self.cluster[kind] if (o["metadata"]["name"], o["metadata"].get("namespace")) != key]
            if event_type != "DELETED":
                items.append(obj)
            self.cluster[kind] = items
            self.events.append((self.version, kind, {"type": event_type, "object": obj}))

    def _answer_kind(self, req, kind, path):
        query = {k: v[-1] for k, v in parse_qs(req["query"]).items()}
        if self.refuse.get(path):
            self.refuse[path] -= 1
            return 403, {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
                         "message": f"{kind} is forbidden"}
        if query.get("watch", "").lower() == "true" and self.refuse_watch:
            return 403, {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
                         "message": f"{kind} is forbidden: cannot watch"}
        if query.get("watch", "").lower() == "true":
            since = int(query.get("resourceVersion") or 0)
            seconds = min(float(query.get("timeoutSeconds") or self.watch_seconds), self.watch_seconds)
            return 200, Stream(self._events(kind, since, time.monotonic() + seconds))
        return 200, {"kind": "List", "metadata": {"resourceVersion": str(self.version)},
                     "items": self.cluster[kind]}

    def _events(self, kind, since, deadline):
        sent = since
        while time.monotonic() < deadline:
            with self._lock:
                new = [(v, e) for v, k, e in self.events if k == kind and v > sent]
            for version, event in new:
                sent = version
                yield event
            time.sleep(0.01)
