"""Helpers for the portal web-app tests: the app on a real database with signed-in clients, a local
Kubernetes API (API-server-shaped JSON over HTTP: no API server can run here), a real JupyterHub's
config, and a live uvicorn server. The fixtures that use them are in conftest_api.py.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import threading
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import sqlalchemy as sa
from portal_test_pods import user_pod

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")

SESSION_SECRET = "test-session-secret-" + "s" * 40
ADMIN_TOKEN = "admin-" + secrets.token_urlsafe(24)
HUB_TOKEN = "hub-" + secrets.token_urlsafe(24)
NOW = datetime(2026, 5, 20, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Taipei


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# -- a local Kubernetes API for live pods ----------------------------------------------------------------
class FakeCluster:
    """Answers the calls the portal makes (list/read/delete pods, namespaces, nodes) from pod JSON
    shaped like the API server's, keeps state, and records deletes. ``down`` makes it refuse to answer."""

    def __init__(self) -> None:
        self.pods: dict[tuple[str, str], dict] = {}
        self.namespaces: dict[str, dict] = {"jhub": {}}
        self.nodes = [{"metadata": {"name": "gpu01", "labels": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}}}]
        self.deleted: list[tuple[str, str, str | None]] = []
        self.down = False
        self._lock = threading.Lock()
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                cluster._serve(self, "GET")

            def do_DELETE(self):
                cluster._serve(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def api_client(self):
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        configuration.retries = 0
        return client.ApiClient(configuration)

    def add(self, pod: dict) -> dict:
        meta = pod["metadata"]
        self.pods[(meta["namespace"], meta["name"])] = pod
        self.namespaces.setdefault(meta["namespace"], {})
        return pod

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, handler, method: str) -> None:
        if self.down:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        url = urlparse(handler.path)
        query = parse_qs(url.query)
        selector = dict(term.split("=", 1) for term in query.get("labelSelector", [""])[0].split(",") if "=" in term)
        parts = url.path.strip("/").split("/")
        with self._lock:
            if url.path == "/api/v1/nodes":
                return self._json(handler, {"kind": "NodeList", "metadata": {}, "items": self.nodes})
            if url.path == "/api/v1/namespaces":
                items = [{"metadata": {"name": n, "labels": labels}} for n, labels in sorted(self.namespaces.items())
                         if all(labels.get(k) == v for k, v in selector.items())]
                return self._json(handler, {"kind": "NamespaceList", "metadata": {}, "items": items})
            if url.path == "/api/v1/pods" or (len(parts) == 5 and parts[4] == "pods"):
                namespace = parts[3] if len(parts) == 5 else None
                items = [p for (ns, _), p in sorted(self.pods.items()) if (namespace is None or ns == namespace)
                         and all(p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
                return self._json(handler, {"kind": "PodList", "apiVersion": "v1",
                                            "metadata": {"resourceVersion": "100"}, "items": items})
            if len(parts) == 4 and parts[2] == "namespaces":
                if parts[3] not in self.namespaces:
                    return self._status(handler, 404, "NotFound")
                return self._json(handler, {"kind": "Namespace", "apiVersion": "v1",
                                            "metadata": {"name": parts[3], "labels": self.namespaces[parts[3]]}})
            if len(parts) == 6 and parts[4] == "pods":
                key = (parts[3], parts[5])
                pod = self.pods.get(key)
                if pod is None:
                    return self._status(handler, 404, "NotFound")
                if method == "GET":
                    return self._json(handler, pod)
                length = int(handler.headers.get("Content-Length") or 0)
                body = json.loads(handler.rfile.read(length) or b"{}")
                want = (body.get("preconditions") or {}).get("uid")
                if want and want != pod["metadata"]["uid"]:
                    return self._status(handler, 409, "Conflict")
                del self.pods[key]
                self.deleted.append((key[0], key[1], want))
                return self._json(handler, pod)
        self._status(handler, 404, "NotFound")

    @staticmethod
    def _json(handler, body: dict, status: int = 200) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _status(self, handler, code: int, reason: str) -> None:
        self._json(handler, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                             "code": code}, status=code)


def plain_pod(name: str = "not-a-user-pod", namespace: str = "jhub") -> dict:
    """A pod in a managed namespace that is not a JupyterHub user server (e.g. the hub itself)."""
    pod = user_pod("hubpod", namespace=namespace)
    pod["metadata"]["name"] = name
    pod["metadata"]["uid"] = f"uid-{name}"
    pod["metadata"]["labels"] = {"app": "jupyterhub", "component": "hub"}
    return pod


# -- the app ---------------------------------------------------------------------------------------------
@dataclass
class Portal:
    app: object
    engine: sa.Engine
    cluster: FakeCluster
    storage: Path
    now: datetime = NOW
    url: str = ""  # set when served on a real socket (LiveServer)
    clients: list = field(default_factory=list)

    @property
    def ctx(self):
        return self.app.state.portal

    def client(self, user: str | None = None, *, admin: bool = False, token: str | None = None):
        """A TestClient signed in as ``user`` (a session cookie the OAuth callback would set), or with
        a bearer ``token``, or anonymous."""
        from fastapi.testclient import TestClient

        from portal.app.auth.cookies import SESSION_COOKIE

        client = TestClient(self.app, follow_redirects=False)
        self.clients.append(client)
        if user is not None:
            client.cookies.set(SESSION_COOKIE, self.ctx.sessions.create(name=user, admin=admin))
        if token is not None:
            client.headers["Authorization"] = f"Bearer {token}"
        return client

    def csrf(self, client) -> str:
        from portal.app.auth.cookies import SESSION_COOKIE

        return self.ctx.signer.csrf_token(self.ctx.signer.read_session(client.cookies.get(SESSION_COOKIE)))

    def add_session(self, user: str, *, start: datetime, end: datetime | None = None, gpus: int = 1,
                    gpu_model: str = "NVIDIA-A100-SXM4-80GB", cpu: float = 4.0, memory_gib: float = 16.0,
                    uid: str | None = None) -> str:
        from portal.models import PodSession

        uid = uid or f"uid-{user}-{secrets.token_hex(4)}"
        with self.engine.begin() as conn:
            conn.execute(sa.insert(PodSession.__table__).values(
                pod_uid=uid, user_name=user, server_name="", namespace="jhub", pod_name=f"jupyter-{user}",
                node_name="gpu01", image="myorg/pytorch-jhub:24.10", gpu_model=gpu_model if gpus else "",
                cpu_request=cpu, memory_request_bytes=int(memory_gib * 1024**3), gpu_count=gpus, rdma_count=0,
                started_at=start, ended_at=end, end_source="finished" if end else None, end_approximate=False,
                last_seen_at=end or self.now))
        return uid

    def audit(self) -> list[dict]:
        from portal.models import AuditLog

        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(AuditLog.__table__).order_by(AuditLog.__table__.c.id)).all()
        return [dict(r._mapping) for r in rows]


def make_portal(database_url: str, cluster: FakeCluster, storage: Path, **web_overrides) -> Portal:
    from portal.app import create_app
    from portal.app.settings import load_web_settings
    from portal.db import make_engine
    from portal.settings import load_settings

    settings = load_settings(database_url=database_url, timezone="Asia/Taipei")
    web_values = {"session_secret": SESSION_SECRET, "storage_base_path": str(storage),
                  "api_tokens": {"ops": {"role": "admin", "sha256": sha(ADMIN_TOKEN)},
                                 "hub": {"role": "hub", "sha256": sha(HUB_TOKEN)}}}
    web_values.update(web_overrides)
    web = load_web_settings(**web_values)
    engine = make_engine(database_url)
    portal = Portal(app=None, engine=engine, cluster=cluster, storage=storage)
    portal.app = create_app(settings, web, engine=engine, kube_factory=cluster.api_client, clock=lambda: portal.now)
    return portal


# -- a real JupyterHub, with the portal registered as its OAuth service ----------------------------------
HUB_CONFIG = '''
from jupyterhub.proxy import Proxy

class NoProxy(Proxy):
    """The tests talk to the hub's own port; routing through configurable-http-proxy is not under test."""
    should_start = False
    async def add_route(self, routespec, target, data): pass
    async def delete_route(self, routespec): pass
    async def get_all_routes(self): return {{}}

c.JupyterHub.proxy_class = NoProxy
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {public_port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = "sqlite:///{dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{dir}/cookie_secret"
c.JupyterHub.pid_file = "{dir}/jupyterhub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"admin"}}
c.JupyterHub.services = [{{
    "name": "portal",
    "oauth_client_id": "service-portal",
    "api_token": {secret!r},
    "oauth_redirect_uri": "http://{portal_host}:{portal_port}/oauth_callback",
    "oauth_no_confirm": True,
}}, {{"name": "tester", "api_token": {tester!r}}}]
c.JupyterHub.load_roles = [
    # what the jhub hub config must grant: users may sign in to the portal service
    {{"name": "user", "scopes": ["self", "access:services!service=portal"]}},
    # and the portal re-reads its signed-in users' names and admin flags (sessions end, admins demote)
    {{"name": "portal-service", "services": ["portal"], "scopes": ["read:users:name"]}},
    {{"name": "tester", "services": ["tester"],
     "scopes": ["admin:users", "tokens", "access:services", "read:users:name"]}},
    {{"name": "admin", "services": ["tester"]}},  # only an admin may make (and demote) admins
]
'''


@dataclass
class Hub:
    url: str  # the hub's own port, as browsers reach it here
    api_url: str
    secret: str
    password: str
    portal_host: str
    portal_port: int
    tester: str  # API token of a test-only hub service that makes users and their tokens

    def portal_settings(self) -> dict:
        return {"hub_api_url": self.api_url, "hub_public_url": self.url, "oauth_client_secret": self.secret,
                "oauth_callback_url": f"http://{self.portal_host}:{self.portal_port}/oauth_callback"}

    def user_token(self, user: str, scopes: list[str] | None = None) -> str:
        """A JupyterHub API token of ``user``, made through the hub's REST API."""
        import httpx

        headers = {"Authorization": f"token {self.tester}"}
        with httpx.Client(base_url=self.api_url, headers=headers, timeout=20) as api:
            if api.get(f"/users/{user}").status_code == 404:
                api.post(f"/users/{user}").raise_for_status()
            body = {"note": "portal test"} | ({"scopes": scopes} if scopes is not None else {})
            reply = api.post(f"/users/{user}/tokens", json=body)
            reply.raise_for_status()
            return reply.json()["token"]


class LiveServer:
    """The portal app served by uvicorn on a real socket (browsers and the hub's redirects reach it)."""

    def __init__(self, app, host: str, port: int) -> None:
        import uvicorn

        self.url = f"http://{host}:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the portal did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def problem(reply) -> str:
    """The message(s) of an error reply: a 422's list of errors (FastAPI's shape), else the detail."""
    detail = reply.json()["detail"]
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in detail)
    return detail
