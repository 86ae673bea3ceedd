"""A local HTTP server that answers the Kubernetes API calls of the GPU smoke test (components/gpu/smoke.py),
so the real `kubernetes` client runs against it over HTTP (no API server can run on this machine).

It keeps Jobs in memory: a created Job gets one pod whose log and outcome the test scripts per node.
(tests/portal/portal_test_kube.py serves the collector's pod lists and watches; this one serves the
ClusterPolicy, nodes, Jobs and pod logs.)
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

NS = "gpu-operator"


class SmokeKubeApi:
    def __init__(self, *, nodes: dict[str, dict], outcomes: dict[str, tuple[str, str]], policy_state="ready",
                 labels: dict[str, dict] | None = None):
        self.nodes = nodes  # name -> allocatable
        self.labels = labels or {}  # name -> extra node labels
        self.outcomes = outcomes  # node -> ("succeeded" | "failed", log)
        self.policy_state = policy_state
        self.jobs: dict[str, dict] = {}
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code: int, body, content_type="application/json"):
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _missing(self):
                self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                 "code": 404, "message": "not found"})

            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                api.requests.append(f"GET {url.path}")
                parts = url.path.strip("/").split("/")
                if url.path == "/apis/nvidia.com/v1/clusterpolicies/cluster-policy":
                    if api.policy_state is None:
                        return self._missing()
                    return self._send(200, {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy",
                                            "metadata": {"name": "cluster-policy"},
                                            "status": {"state": api.policy_state}})
                if url.path == "/api/v1/nodes":
                    assert query.get("labelSelector") == ["nvidia.com/gpu.present=true"], query
                    return self._send(200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": [
                        {"metadata": {"name": n, "labels": {"nvidia.com/gpu.present": "true",
                                                            **api.labels.get(n, {})}},
                         "status": {"allocatable": alloc}} for n, alloc in sorted(api.nodes.items())]})
                if parts[:5] == ["apis", "batch", "v1", "namespaces", NS] and len(parts) == 7:
                    job = api.jobs.get(parts[6])
                    return self._send(200, job) if job else self._missing()
                if url.path == f"/api/v1/namespaces/{NS}/pods":
                    name = query["labelSelector"][0].split("=", 1)[1]
                    job = api.jobs.get(name)
                    items = [self._pod(job)] if job else []
                    return self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
                if parts[:5] == ["api", "v1", "namespaces", NS, "pods"] and parts[-1] == "log":
                    node = parts[5][len("pod-"):]
                    return self._send(200, api.outcomes[node][1], "text/plain")
                return self._missing()

            def _pod(self, job):
                node = job["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"]
                phase = "Succeeded" if api.outcomes[node][0] == "succeeded" else "Failed"
                return {"metadata": {"name": f"pod-{node}", "namespace": NS,
                                     "labels": {"job-name": job["metadata"]["name"]}},
                        "spec": {"nodeName": node, "containers": [{"name": "cuda", "image": "x"}]},
                        "status": {"phase": phase}}

            def do_POST(self):
                url = urlparse(self.path)
                api.requests.append(f"POST {url.path}")
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node = body["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"]
                outcome = api.outcomes[node][0]
                body["status"] = {"succeeded": 1} if outcome == "succeeded" else {"failed": 1}
                api.jobs[body["metadata"]["name"]] = body
                self._send(201, body)

            def do_DELETE(self):
                url = urlparse(self.path)
                api.requests.append(f"DELETE {url.path}")
                name = url.path.rsplit("/", 1)[1]
                if api.jobs.pop(name, None) is None:
                    return self._missing()
                self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "SmokeKubeApi":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kubeconfig(self) -> str:
        host, port = self.server.server_address
        return json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": f"http://{host}:{port}"}}],
            "users": [{"name": "test", "user": {"token": "t"}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        })
