"""The Kubernetes API as far as the hub uses it: list and watch nodes and pods, served from test data by the
shared fake API server (tests/support/kubeapi.py).

kubespawner's real kubernetes_asyncio client (and its reflectors) talk to it over HTTP on 127.0.0.1. Lists
carry a resourceVersion; a watch (`?watch=true`) replays the events after the resourceVersion it asks for,
then streams new ones until its `timeoutSeconds` (capped by `watch_seconds`) runs out, as the API server
does. Tests set `cluster["nodes"]` / `cluster["pods"]`, `publish` changes, `refuse` / `refuse_watch` answer
403 as for a ServiceAccount without the verb.
"""

from tests.support.kubeapi import KubeApiServer

KINDS = {"/api/v1/nodes": "nodes", "/api/v1/pods": "pods"}


class KubeApi(KubeApiServer):
    def __init__(self, watch_seconds: float = 5.0):
        # the token of the KUBECONFIG that tests/hub/conftest.py writes for kubernetes_asyncio
        super().__init__(token="test-token", watch_seconds=watch_seconds)
        self.cluster.update({"nodes": [], "pods": []})

    def list_calls(self) -> int:
        """List requests so far (watches not counted)."""
        return sum(1 for r in self.requests if r["path"] in KINDS and "watch=true" not in r["query"].lower())
