"""The Kubernetes API calls the collector makes, answered by the shared fake API server
(tests/support/kubeapi.py) from recorded JSON.

The test scripts pod lists and chunked watch streams: events, a 410 Gone ERROR event, a dropped connection,
and gates that hold the stream until the test opens them. The real ``kubernetes`` client talks to it over
HTTP. (No API server can run on this machine.)
"""

from __future__ import annotations

from tests.support.kubeapi import KubeApiServer, added, deleted, drop, gate, gone, modified

__all__ = ["FakeKubeApi", "added", "claim", "deleted", "drop", "gate", "gone", "modified", "write_kubeconfig"]


def claim(user: str, size: str, namespace: str = "jhub") -> dict:
    """The PersistentVolumeClaim KubeSpawner makes for ``user`` (claim-{username})."""
    return {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
            "metadata": {"name": f"claim-{user}", "namespace": namespace, "uid": f"pvc-{user}"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
            "status": {"phase": "Bound", "capacity": {"storage": size}}}


class FakeKubeApi(KubeApiServer):
    """Scripted pods: ``lists`` and ``watches`` are queues consumed in order (the last list repeats).

    A watch with nothing scripted stays open and silent for its ``timeoutSeconds``, as an API server's
    does; ``idle_watch_seconds`` ends such watches sooner (tests whose clock moves by hand need the
    collector's loop to come round often). ``nodes`` and ``claims`` (PersistentVolumeClaims) are served as kept.
    """

    def __init__(self, *, idle_watch_seconds: float | None = None) -> None:
        super().__init__(idle_watch_seconds=idle_watch_seconds, watch_seconds=3600)
        self.lists, self.watches, self.nodes, self.claims = [], [], [], []

    lists = property(lambda self: self.scripted_lists["pods"],
                     lambda self, value: self.scripted_lists.__setitem__("pods", value))
    watches = property(lambda self: self.scripted_watches["pods"],
                       lambda self, value: self.scripted_watches.__setitem__("pods", value))
    nodes = property(lambda self: self.cluster["nodes"], lambda self, value: self.cluster.__setitem__("nodes", value))
    claims = property(lambda self: self.cluster["persistentvolumeclaims"],
                      lambda self, value: self.cluster.__setitem__("persistentvolumeclaims", value))

    def urls(self) -> list[str]:
        """The requests so far as ``path?query``."""
        return [r["path"] + (f"?{r['query']}" if r["query"] else "") for r in self.requests]


def write_kubeconfig(api: FakeKubeApi, path) -> None:
    """A kubeconfig that points the real kubernetes client at `api`; kept as `api.kubeconfig`."""
    api.write_kubeconfig(path)
