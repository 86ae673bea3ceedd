"""Shared fixtures for the hub-side tests: the hub/ modules on sys.path, local HTTP servers, cluster data."""

import os
import sys

import pytest

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
def kube_api(tmp_path, monkeypatch):
    """A local HTTP server serving recorded Kubernetes API JSON, and a kubeconfig pointing at it.

    A Kubernetes API server cannot run here; kubespawner's real kubernetes_asyncio client talks to this one.
    """
    srv = RecordingServer()
    srv.start()
    srv.cluster = {"nodes": [], "pods": []}
    srv.route("GET", "/api/v1/nodes", lambda req: (200, {"kind": "NodeList", "items": srv.cluster["nodes"]}))
    srv.route("GET", "/api/v1/pods", lambda req: (200, {"kind": "PodList", "items": srv.cluster["pods"]}))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
        f"clusters: [{{name: test, cluster: {{server: '{srv.url}'}}}}]\n"
        "users: [{name: test, user: {token: test-token}}]\n"
        "contexts: [{name: test, context: {cluster: test, user: test}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    yield srv
    srv.stop()
