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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
HUB_DIR = os.path.join(ROOT, "hub")
# the hub modules as the hub imports them, the hubtest_* helpers, and tests.support (the shared fakes)
for _path in (HUB_DIR, HERE, ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from hubtest_http import RecordingServer  # noqa: E402
from hubtest_kube import KubeApi  # noqa: E402


@pytest.fixture
def server():
    """A real HTTP server on 127.0.0.1 (random port) whose routes each test sets."""
    srv = RecordingServer()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def kube_api():
    """The shared fake Kubernetes API (lists and watches of nodes and pods, hubtest_kube.KubeApi) serving test data;
    point KubeSpawner.k8s_api_host at its url. kubespawner's real kubernetes_asyncio client talks to it."""
    srv = KubeApi()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(params=["simple", "curl"])
def tornado_client(request):
    """Run a test with tornado's simple HTTP client and with the curl one the chart's hub configures."""
    from tornado.httpclient import AsyncHTTPClient

    if request.param == "curl":
        pytest.importorskip("pycurl", reason="pycurl (pinned in requirements/hub.txt) is not installed")
        AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")
    yield request.param
    AsyncHTTPClient.configure(None)
