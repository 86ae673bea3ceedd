"""Shared fixtures for the hub-side tests: the hub/ modules on sys.path, local HTTP servers, cluster data."""

import os
import sys
import tempfile

import pytest

# kubernetes_asyncio reads KUBECONFIG once, at import; kubespawner then overrides the host per test
# (KubeSpawner.k8s_api_host). No Kubernetes API server can run here: tests serve recorded JSON instead.
_KUBECONFIG = os.path.join(tempfile.mkdtemp(prefix="jhub-test-"), "kubeconfig")
with open(_KUBECONFIG, "w") as _f:
    _f.write(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
        "clusters: [{name: test, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: test, user: {token: test-token}}]\n"
        "contexts: [{name: test, context: {cluster: test, user: test}}]\n"
    )
os.environ["KUBECONFIG"] = _KUBECONFIG
os.environ.pop("KUBERNETES_SERVICE_HOST", None)

HUB_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "hub"))
if HUB_DIR not in sys.path:
    sys.path.insert(0, HUB_DIR)

from tests.hub.http_server import RecordingServer  # noqa: E402


@pytest.fixture
def server():
    """A real HTTP server on 127.0.0.1 (random port) whose routes each test sets."""
    srv = RecordingServer()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def kube_api():
    """A local HTTP server serving recorded Kubernetes API JSON; point KubeSpawner.k8s_api_host at its url.

    A Kubernetes API server cannot run here; kubespawner's real kubernetes_asyncio client talks to this one.
    """
    srv = RecordingServer()
    srv.start()
    srv.cluster = {"nodes": [], "pods": []}
    srv.route("GET", "/api/v1/nodes", lambda req: (200, {"kind": "NodeList", "items": srv.cluster["nodes"]}))
    srv.route("GET", "/api/v1/pods", lambda req: (200, {"kind": "PodList", "items": srv.cluster["pods"]}))
    yield srv
    srv.stop()
