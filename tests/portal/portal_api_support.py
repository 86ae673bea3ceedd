"""Helpers for the portal web-app tests: the app on a real database with signed-in clients, the shared fake
Kubernetes API server (tests/support/kubeapi.py: no API server can run here), a real JupyterHub's
config, and a live uvicorn server. The fixtures that use them are in conftest_api.py.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import threading
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from portal_test_pods import user_pod

from tests.support.kubeapi import KubeApiServer

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
class FakeCluster(KubeApiServer):
    """The shared fake API server with the portal's view: pods (list/read/delete), namespaces (name ->
    labels, tests may edit the dict), nodes; ``deleted`` lists (namespace, pod, uid precondition) of each
    delete. ``down`` makes it cut every connection."""

    def __init__(self) -> None:
        super().__init__()
        self.namespaces: dict[str, dict] = {"jhub": {}}
        self.cluster["pods"] = []
        self.nodes = [{"metadata": {"name": "gpu01", "labels": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}}}]

    nodes = property(lambda self: self.cluster["nodes"], lambda self, value: self.cluster.__setitem__("nodes", value))

    @property
    def pods(self) -> dict[tuple[str, str], dict]:
        return {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in self.cluster["pods"]}

    @property
    def deleted(self) -> list[tuple[str, str, str | None]]:
        return [(ns, name, uid) for plural, ns, name, uid in self.deletions if plural == "pods"]

    def add(self, pod: dict) -> dict:
        self.namespaces.setdefault(pod["metadata"]["namespace"], {})
        return super().add(pod, "pods")

    def _rest(self, handler, request) -> None:
        with self._lock:  # the namespaces as the test left them
            self.cluster["namespaces"] = [{"kind": "Namespace", "apiVersion": "v1",
                                           "metadata": {"name": name, "labels": labels}}
                                          for name, labels in sorted(self.namespaces.items())]
        super()._rest(handler, request)


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
