"""A local HTTP server that answers the Kubernetes API calls the collector makes, from recorded JSON.

It serves pod lists and chunked watch streams scripted by the test: events, a 410 Gone ERROR event,
a dropped connection, and gates that hold the stream until the test opens them. The real
``kubernetes`` client talks to it over HTTP. (No API server can run on this machine.)
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from kubernetes import client


def added(pod): return ("event", "ADDED", pod)
def modified(pod): return ("event", "MODIFIED", pod)
def deleted(pod): return ("event", "DELETED", pod)
def gone(): return ("gone",)  # ERROR event with a 410 Gone status, as the API server sends it
def drop(): return ("drop",)  # the connection dies mid-stream (no terminating chunk)
def gate(event: threading.Event): return ("gate", event)  # hold the stream until event is set


def claim(user: str, size: str, namespace: str = "jhub") -> dict:
    """The PersistentVolumeClaim KubeSpawner makes for ``user`` (claim-{username})."""
    return {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
            "metadata": {"name": f"claim-{user}", "namespace": namespace, "uid": f"pvc-{user}"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
            "status": {"phase": "Bound", "capacity": {"storage": size}}}


class FakeKubeApi:
    """Scripted answers: ``lists`` and ``watches`` are queues consumed in order (the last list repeats).

    A watch with nothing scripted stays open and silent for its ``timeoutSeconds``, as an API server's
    does; ``idle_watch_seconds`` ends such watches sooner (tests whose clock moves by hand need the
    collector's loop to come round often).
    """

    def __init__(self, *, idle_watch_seconds: float | None = None) -> None:
        self.lists: list[tuple[list[dict], str]] = []
        self.watches: list[list[tuple]] = []
        self.nodes: list[dict] = []
        self.claims: list[dict] = []  # PersistentVolumeClaims, as the API returns them
        self.requests: list[str] = []
        self.idle_watch_seconds = idle_watch_seconds
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.open_watches = 0  # watch requests being answered now
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                api._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def api_client(self) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()

    # -- serving ---------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        query = parse_qs(url.query)
        with self._lock:
            self.requests.append(handler.path)
        if url.path == "/api/v1/nodes":
            return self._json(handler, {"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                                        "items": self.nodes})
        if "persistentvolumeclaims" in url.path:
            return self._claims(handler, url.path.strip("/").split("/"))
        if not url.path.endswith("/pods"):
            return self._json(handler, {"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)
        if query.get("watch") == ["true"]:
            return self._watch(handler, float(query.get("timeoutSeconds", ["1"])[0]))
        with self._lock:
            items, version = self.lists.pop(0) if len(self.lists) > 1 else self.lists[0]
        self._json(handler, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": version},
                             "items": items})

    def _claims(self, handler, parts: list[str]) -> None:
        namespace = parts[3] if len(parts) >= 5 and parts[2] == "namespaces" else None
        with self._lock:
            found = [c for c in self.claims if namespace is None or c["metadata"]["namespace"] == namespace]
        if len(parts) == 6:  # one claim by name
            found = [c for c in found if c["metadata"]["name"] == parts[5]]
            if not found:
                return self._json(handler, {"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)
            return self._json(handler, found[0])
        self._json(handler, {"kind": "PersistentVolumeClaimList", "apiVersion": "v1",
                             "metadata": {"resourceVersion": "1"}, "items": found})

    @staticmethod
    def _json(handler, body: dict, status: int = 200) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _watch(self, handler, timeout_seconds: float) -> None:
        with self._lock:
            script = self.watches.pop(0) if self.watches else None
            self.open_watches += 1
        try:
            self._stream(handler, script, timeout_seconds)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (e.g. it stopped watching): nothing more to send
        finally:
            with self._lock:
                self.open_watches -= 1

    def _stream(self, handler, script: list | None, timeout_seconds: float) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def chunk(payload: dict) -> None:
            line = (json.dumps(payload) + "\n").encode()
            handler.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            handler.wfile.flush()

        if script is None:  # nothing scripted: an idle watch that the server ends after its timeout
            idle = timeout_seconds if self.idle_watch_seconds is None else min(timeout_seconds,
                                                                               self.idle_watch_seconds)
            self._closing.wait(idle)
        for step in script or []:
            if step[0] == "event":
                chunk({"type": step[1], "object": step[2]})
            elif step[0] == "gone":
                chunk({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                   "message": "too old resource version", "reason": "Expired",
                                                   "code": 410}})
            elif step[0] == "gate":
                step[1].wait(30)
            elif step[0] == "drop":
                handler.wfile.write(b"40\r\n{\"type\": \"MODIFIED\", \"obj")  # a chunk cut short
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(2)
                return
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()


def write_kubeconfig(api: FakeKubeApi, path) -> None:
    """A kubeconfig that points the real kubernetes client at `api`; kept as `api.kubeconfig`."""
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: '{api.url}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n")
    api.kubeconfig = path

