"""The shared fake API server (tests/support/kubeapi.py) answers the real `kubernetes` client as the API server
does: selectors, create/patch/delete with their conflicts, watches from a resourceVersion, credentials, and
the service proxy forwarding to a local port."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client, watch

from tests.support.kubeapi import KubeApiServer


def pod(name, namespace="jhub", labels=None, phase="Running", node="gpu01"):
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": namespace,
                                                            "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}, "status": {"phase": phase}}


@pytest.fixture
def api():
    with KubeApiServer(tls=True) as server:
        yield server


def names(items):
    return sorted(i.metadata.name for i in items)


def test_label_and_field_selectors(api):
    api.add(pod("a", labels={"component": "hub", "tier": "x"}))
    api.add(pod("b", labels={"component": "singleuser-server"}, phase="Pending", node="gpu02"))
    api.add(pod("c", "other", labels={"component": "hub"}))
    core = client.CoreV1Api(api.api_client())
    assert names(core.list_namespaced_pod("jhub", label_selector="component=hub").items) == ["a"]
    assert names(core.list_pod_for_all_namespaces(label_selector="component==hub").items) == ["a", "c"]
    assert names(core.list_namespaced_pod("jhub", label_selector="component!=hub").items) == ["b"]
    assert names(core.list_namespaced_pod("jhub", label_selector="component in (hub,x)").items) == ["a"]
    assert names(core.list_namespaced_pod("jhub", label_selector="tier").items) == ["a"]
    assert names(core.list_namespaced_pod("jhub", label_selector="!tier").items) == ["b"]
    assert names(core.list_pod_for_all_namespaces(field_selector="spec.nodeName=gpu02").items) == ["b"]
    assert names(core.list_namespaced_pod("jhub", field_selector="status.phase!=Running").items) == ["b"]


def test_create_patch_delete_and_their_conflicts(api):
    core = client.CoreV1Api(api.api_client())
    core.create_namespaced_config_map("jhub", {"metadata": {"name": "m"}, "data": {"a": "1", "b": "2"}})
    with pytest.raises(client.ApiException) as exists:
        core.create_namespaced_config_map("jhub", {"metadata": {"name": "m"}})
    assert exists.value.status == 409
    core.patch_namespaced_config_map("m", "jhub", {"data": {"a": None, "c": "3"}})
    assert core.read_namespaced_config_map("m", "jhub").data == {"b": "2", "c": "3"}
    uid = api.get("configmaps", "m", "jhub")["metadata"]["uid"]
    with pytest.raises(client.ApiException) as conflict:
        core.delete_namespaced_config_map("m", "jhub", body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid="another")))
    assert conflict.value.status == 409
    core.delete_namespaced_config_map("m", "jhub", body=client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=uid)))
    assert api.deletions == [("configmaps", "jhub", "m", uid)]
    with pytest.raises(client.ApiException) as missing:
        core.read_namespaced_config_map("m", "jhub")
    assert missing.value.status == 404


def test_a_watch_replays_after_its_resource_version_then_streams(api):
    api.watch_seconds = 1
    api.add(pod("old"))
    core = client.CoreV1Api(api.api_client())
    version = core.list_namespaced_pod("jhub").metadata.resource_version
    threading.Timer(0.2, lambda: api.add(pod("new"))).start()
    seen = [(e["type"], e["object"].metadata.name) for e in
            watch.Watch().stream(core.list_namespaced_pod, "jhub", resource_version=version, timeout_seconds=1)]
    assert seen == [("ADDED", "new")]


def test_wrong_credentials_are_refused(api):
    core = client.CoreV1Api(api.api_client())
    api.token = "other"
    with pytest.raises(client.ApiException) as refused:
        core.list_node()
    assert refused.value.status == 401


def test_the_service_proxy_forwards_to_a_local_port(api):
    class Peer(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = f"peer saw {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    peer = ThreadingHTTPServer(("127.0.0.1", 0), Peer)
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    try:
        api.proxy("jhub", "hub", 8081, f"http://127.0.0.1:{peer.server_address[1]}")
        core = client.CoreV1Api(api.api_client())
        assert core.connect_get_namespaced_service_proxy_with_path("hub:8081", "jhub", "hub/health") == \
            "peer saw /hub/health"
        with pytest.raises(client.ApiException) as none:
            core.connect_get_namespaced_service_proxy_with_path("other:80", "jhub", "x")
        assert none.value.status == 503
    finally:
        peer.shutdown()
        peer.server_close()


def test_token_reviews_answer_as_the_api_server_does(api):
    """A pod-bound projected token reviewed for its audience; refused ones carry the API server's error."""
    agent = api.add(pod("agent-x7k2p", node="gpu02"))
    auth = client.AuthenticationV1Api(api.api_client())

    def review(token, audiences=("jhub-portal",)):
        return auth.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(
            token=token, audiences=list(audiences))))

    token = api.issue_token(namespace="jhub", service_account="agent", audiences=["jhub-portal"], pod=agent)
    good = review(token).status
    assert good.authenticated is True and good.audiences == ["jhub-portal"] and good.error is None
    assert good.user.username == "system:serviceaccount:jhub:agent" and good.user.uid == "uid-sa-jhub-agent"
    assert good.user.groups == ["system:serviceaccounts", "system:serviceaccounts:jhub", "system:authenticated"]
    extra = good.user.extra
    assert extra["authentication.kubernetes.io/node-name"] == ["gpu02"]
    assert extra["authentication.kubernetes.io/pod-name"] == ["agent-x7k2p"]
    assert extra["authentication.kubernetes.io/pod-uid"] == [agent["metadata"]["uid"]]
    assert extra["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
    raw = api.requests[-1]
    assert raw["method"] == "POST" and raw["path"] == "/apis/authentication.k8s.io/v1/tokenreviews"

    other = review(token, ["https://kubernetes.default.svc.cluster.local"]).status
    assert other.authenticated is None and other.user.username is None  # false is omitted, user is {}
    assert other.error == ('[invalid bearer token, token audiences ["jhub-portal"] is invalid for the target '
                           'audiences ["https://kubernetes.default.svc.cluster.local"]]')
    old = api.issue_token(namespace="jhub", service_account="agent", audiences=["jhub-portal"], pod=agent,
                          now=time.time() - 700)
    assert review(old).status.error == "[invalid bearer token, service account token has expired]"
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert review(tampered).status.authenticated is None
    assert review("not-a-jwt").status.error == "invalid bearer token"
    api.publish("pods", "DELETED", agent)
    assert review(token).status.error == "[invalid bearer token, service account token has been invalidated]"
    assert api.reviews == 6 and not api.cluster.get("tokenreviews"), "reviews are answered, never stored"
