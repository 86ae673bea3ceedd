"""One local Kubernetes API server for every suite (no API server can run on this machine).

A real HTTP(S) server on 127.0.0.1 (threads) keeps objects in the API's own JSON shapes and answers as the
API server does: GET of one object or a list (``labelSelector``, ``fieldSelector``, a list's
``resourceVersion``), ``?watch=true`` as chunked watch events (replayed after the asked resourceVersion, then
live until ``timeoutSeconds``), POST (201, 409 AlreadyExists), PUT, PATCH (merge), DELETE (uid
preconditions, 409 Conflict), pod logs, and the service proxy path
(``/api/v1/namespaces/N/services/S:P/proxy/...``) forwarded to a registered handler or a local port.
Every request is logged in ``requests`` for assertions. The real ``kubernetes`` client (and kubespawner's
``kubernetes_asyncio``) reach it through the kubeconfig that ``write_kubeconfig`` writes.

Objects live in ``cluster``: resource plural (``pods``, ``nodes``, ``clusterpolicies``...) -> list of
objects; tests may set those lists directly. ``publish`` changes the cluster and records a watch event.
For what a store cannot express, tests script it: ``script_list`` / ``script_watch`` (410 Gone, a dropped
stream, a gate that holds the stream), ``route`` (an answer of the test's own for a method and path),
``refuse`` (403 for the next n lists), ``down`` (every connection is cut).

TokenReview (``POST /apis/authentication.k8s.io/v1/tokenreviews``) is answered as a 1.32 API server does for
the ServiceAccount tokens this server issued (``issue_token``: a pod-bound, projected token, signed with a
key of this server's): 201 with the review echoed and its ``status`` filled in. A good token: ``authenticated``
true, the ServiceAccount's username, uid and groups, ``extra`` with the pod's and (since 1.30,
ServiceAccountTokenPodNodeInfo) the node's name and uid and the credential id, and ``audiences``: those of
the review's that the token has. A refused one (unknown, expired, another audience, its pod gone): no
``authenticated`` (false is omitted, as Go's ``omitempty`` does), ``user: {}`` and the API server's ``error``.
``reviews`` counts the reviews answered.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

# kinds whose objects have no namespace
CLUSTER_SCOPED = {"nodes", "namespaces", "persistentvolumes", "clusterpolicies", "clusterroles",
                  "clusterrolebindings", "customresourcedefinitions", "storageclasses", "nicclusterpolicies"}
LIST_KINDS = {"pods": "PodList", "nodes": "NodeList", "namespaces": "NamespaceList", "events": "EventList",
              "secrets": "SecretList", "services": "ServiceList", "persistentvolumeclaims":
              "PersistentVolumeClaimList", "jobs": "JobList", "clusterpolicies": "ClusterPolicyList"}


def added(obj): return ("event", "ADDED", obj)
def modified(obj): return ("event", "MODIFIED", obj)
def deleted(obj): return ("event", "DELETED", obj)
def gone(): return ("gone",)  # ERROR event with a 410 Gone status, as the API server sends it
def drop(): return ("drop",)  # the connection dies mid-stream (no terminating chunk)
def gate(event: threading.Event): return ("gate", event)  # hold the stream until event is set


def status(code: int, reason: str, message: str = "") -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": reason,
            "code": code, "message": message or reason}


def _b64(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def _go_quoted(values: list[str]) -> str:
    """A []string as Go's %q prints it: ["a" "b"]."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


class Stream:
    """A streamed answer of a route: each item (a dict) goes out as one JSON line in its own chunk."""

    def __init__(self, items):
        self.items = items


def _path_value(obj: dict, dotted: str):
    value = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _label_match(labels: dict, selector: str) -> bool:
    for term in filter(None, (t.strip() for t in re.split(r",(?![^(]*\))", selector))):  # not in (a,b)
        if " in " in term or " notin " in term:
            key, op, values = term.split(None, 2)
            wanted = {v.strip() for v in values.strip("()").split(",")}
            if (labels.get(key) in wanted) != (op == "in"):
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field_match(obj: dict, selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        key, value = term.replace("==", "=").replace("!=", "=").split("=", 1)
        found = _path_value(obj, key)
        if ((found or "") == value) == negate:
            return False
    return True


def _merge(target: dict, patch: dict) -> dict:
    """A JSON merge patch (RFC 7386); strategic merge patches of the tests' kind read the same."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), which the kubeconfig names as the cluster's CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "apiserver.crt", folder / "apiserver.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class KubeApiServer:
    """See the module's docstring. ``token``: answer 401 to requests without ``Authorization: Bearer token``;
    ``tls``: serve HTTPS with a self-signed certificate (the kubeconfig carries it as the CA);
    ``watch_seconds`` caps how long a watch stays open; ``idle_watch_seconds`` ends watches with nothing
    scripted and nothing to send sooner (for tests whose clock moves by hand)."""

    def __init__(self, *, token: str | None = "test-token", tls: bool = False, watch_seconds: float = 5.0,
                 idle_watch_seconds: float | None = None) -> None:
        self.cluster: dict[str, list[dict]] = {}
        self.logs: dict[tuple[str, str], str] = {}  # (namespace, pod) -> log text
        self.requests: list[dict] = []
        self.token = token
        self.watch_seconds = watch_seconds
        self.idle_watch_seconds = idle_watch_seconds
        self.version = 1
        self.events: list[tuple[int, str, dict]] = []  # (resourceVersion, plural, watch event)
        self.scripted_lists: dict[str, list[tuple[list[dict], str]]] = {}
        self.scripted_watches: dict[str, list[list[tuple]]] = {}
        self.routes: dict[tuple[str, str], object] = {}
        self.proxies: dict[tuple[str, str, str], object] = {}
        self.refuse: dict[str, int] = {}  # path -> how many more lists to answer 403
        self.refuse_watch = False
        self.deletions: list[tuple[str, str | None, str, str | None]] = []  # plural, ns, name, uid precondition
        self.on_create: dict[str, object] = {}  # plural -> fn(obj) run on a created object before it is kept
        self.issuer = "https://kubernetes.default.svc.cluster.local"  # MicroK8s' --service-account-issuer
        self.reviews = 0  # TokenReviews answered
        self._signing_key = secrets.token_bytes(32)
        self.down = False
        self.open_watches = 0
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._tls_dir = Path(tempfile.mkdtemp(prefix="jhub-kubeapi-"))
        self.ca_file: Path | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _any(self):
                api._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:
            self.ca_file, key = _self_signed(self._tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.ca_file, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    # -- life ------------------------------------------------------------------------------------------
    def __enter__(self) -> KubeApiServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:  # already serving; kept for callers written against RecordingServer
        pass

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()

    stop = close

    @property
    def url(self) -> str:
        return f"{'https' if self.ca_file else 'http'}://127.0.0.1:{self.server.server_address[1]}"

    # -- clients ---------------------------------------------------------------------------------------
    def kubeconfig_text(self) -> str:
        cluster = {"server": self.url}
        if self.ca_file:
            cluster["certificate-authority-data"] = b64encode(self.ca_file.read_bytes()).decode()
        user = {"token": self.token or "none"}
        return json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "test", "preferences": {},
                           "clusters": [{"name": "test", "cluster": cluster}],
                           "users": [{"name": "test", "user": user}],
                           "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}]})

    def write_kubeconfig(self, path: Path | str | None = None) -> Path:
        path = Path(path) if path else self._tls_dir / "kubeconfig"
        path.write_text(self.kubeconfig_text())
        self.kubeconfig = path
        return path

    def api_client(self):
        """A real ``kubernetes`` ApiClient for this server (no retries: a refused call fails at once)."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.write_kubeconfig()), client_configuration=configuration)
        configuration.retries = 0
        return client.ApiClient(configuration)

    # -- the cluster -----------------------------------------------------------------------------------
    @staticmethod
    def plural(obj: dict) -> str:
        kind = obj.get("kind", "")
        lower = kind.lower()
        return {"endpoints": "endpoints", "clusterpolicy": "clusterpolicies", "networkpolicy": "networkpolicies",
                "ingress": "ingresses"}.get(lower, lower + "s")

    def add(self, obj: dict, plural: str | None = None) -> dict:
        """Keep ``obj`` (kind decides where, unless ``plural`` says) as an ADDED event; returns what is kept."""
        return self.publish(plural or self.plural(obj), "ADDED", obj)

    def publish(self, plural: str, event_type: str, obj: dict) -> dict:
        """Change the cluster: ADDED / MODIFIED / DELETED ``obj`` (matched by namespace and name)."""
        with self._lock:
            self.version += 1
            meta = obj.setdefault("metadata", {})
            meta.setdefault("uid", f"uid-{plural}-{meta.get('namespace', '')}-{meta.get('name')}")
            obj = {**obj, "metadata": {**meta, "resourceVersion": str(self.version)}}
            key = (obj["metadata"].get("namespace"), obj["metadata"]["name"])
            items = [o for o in self.cluster.get(plural, []) if self._key(o) != key]
            if event_type != "DELETED":
                items.append(obj)
            self.cluster[plural] = items
            self.events.append((self.version, plural, {"type": event_type, "object": obj}))
            return obj

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict | None:
        with self._lock:
            return next((o for o in self.cluster.get(plural, []) if self._key(o) == (namespace, name)), None)

    @staticmethod
    def _key(obj: dict) -> tuple:
        return obj["metadata"].get("namespace"), obj["metadata"]["name"]

    # -- scripts ---------------------------------------------------------------------------------------
    def script_list(self, plural: str, items: list[dict], version: str = "1") -> None:
        """The next list of ``plural`` answers these items (the last scripted list repeats)."""
        self.scripted_lists.setdefault(plural, []).append((items, version))

    def script_watch(self, plural: str, steps: list[tuple]) -> None:
        """The next watch of ``plural`` sends these steps (added/modified/deleted/gone/drop/gate) and ends."""
        self.scripted_watches.setdefault(plural, []).append(steps)

    def route(self, method: str, path: str, answer) -> None:
        """answer(request) -> (status, body) or (status, body, delay_seconds); ``path`` may end in ``*``."""
        self.routes[(method, path)] = answer

    def proxy(self, namespace: str, service: str, port: int | str, target) -> None:
        """The service proxy of ``service:port``: ``target`` is a callable(request) -> (status, body[, content
        type]) or a base URL (``http://127.0.0.1:PORT``) the request is forwarded to."""
        self.proxies[(namespace, service, str(port))] = target

    def paths(self) -> list[str]:
        """The requests so far as ``METHOD path?query`` lines."""
        return [f"{r['method']} {r['path']}" + (f"?{r['query']}" if r["query"] else "") for r in self.requests]

    # -- ServiceAccount tokens and their review ------------------------------------------------------------
    def issue_token(self, *, namespace: str, service_account: str, audiences: list[str], pod: dict | None = None,
                    node: str | None = None, expires_in: float = 600, now: float | None = None) -> str:
        """A projected ServiceAccount token as the kubelet gets it for a pod (TokenRequest with the pod as the
        bound object): a JWT with the claims of a 1.32 API server, signed by this server. ``pod``: a pod kept
        here (its name, uid and spec.nodeName are bound in); ``node`` overrides the node claim."""
        issued = int(time.time() if now is None else now)
        claims: dict = {"aud": list(audiences), "exp": int(issued + expires_in), "iat": issued, "nbf": issued,
                        "iss": self.issuer, "jti": secrets.token_hex(16),
                        "sub": f"system:serviceaccount:{namespace}:{service_account}",
                        "kubernetes.io": {"namespace": namespace, "serviceaccount": {
                            "name": service_account, "uid": f"uid-sa-{namespace}-{service_account}"}}}
        if pod is not None:
            meta = pod["metadata"]
            claims["kubernetes.io"]["pod"] = {"name": meta["name"], "uid": meta["uid"]}
            node = node or pod.get("spec", {}).get("nodeName")
        if node:
            claims["kubernetes.io"]["node"] = {"name": node, "uid": f"uid-node-{node}"}
        segments = [_b64({"alg": "RS256", "kid": "fake-kube-apiserver"}), _b64(claims)]
        signature = hmac.new(self._signing_key, ".".join(segments).encode(), hashlib.sha256).digest()
        return ".".join(segments + [base64.urlsafe_b64encode(signature).decode().rstrip("=")])

    def _review(self, body: dict) -> dict:
        """The review of ``body`` (a TokenReview), as the API server fills it in."""
        spec = body.get("spec") or {}
        wanted = spec.get("audiences") or [self.issuer]  # no audiences: the API server's own
        claims, error = self._verify(spec.get("token") or "", wanted)
        review = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                  "metadata": {"creationTimestamp": None}, "spec": spec}
        if error is not None:
            review["status"] = {"user": {}, "error": f"[invalid bearer token, {error}]" if error else
                                "invalid bearer token"}
            return review
        k8s = claims["kubernetes.io"]
        namespace, account = k8s["namespace"], k8s["serviceaccount"]
        extra = {"authentication.kubernetes.io/credential-id": [f"JTI={claims['jti']}"]}
        for kind in ("pod", "node"):
            if kind in k8s:
                extra[f"authentication.kubernetes.io/{kind}-name"] = [k8s[kind]["name"]]
                extra[f"authentication.kubernetes.io/{kind}-uid"] = [k8s[kind]["uid"]]
        review["status"] = {
            "authenticated": True,
            "user": {"username": claims["sub"], "uid": account["uid"],
                     "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                                "system:authenticated"], "extra": extra},
            "audiences": [a for a in wanted if a in claims["aud"]]}
        return review

    def _verify(self, token: str, wanted: list[str]) -> tuple[dict | None, str | None]:
        """(claims, None) for a good token; (None, the authenticator's error, "" for none) otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            return None, ""
        expected = hmac.new(self._signing_key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        except ValueError:
            return None, ""
        if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            return None, ""  # not this issuer's: no authenticator claims it
        if not hmac.compare_digest(signature, expected):
            return None, "go-jose/go-jose: error in cryptographic primitive"
        if not set(claims["aud"]) & set(wanted):
            return None, (f"token audiences {_go_quoted(claims['aud'])} is invalid for the target audiences "
                          f"{_go_quoted(wanted)}")
        if time.time() > claims["exp"]:
            return None, "service account token has expired"
        bound = claims["kubernetes.io"].get("pod")
        if bound is not None:
            pod = self.get("pods", bound["name"], claims["kubernetes.io"]["namespace"])
            if pod is None or pod["metadata"].get("uid") != bound["uid"]:
                return None, "service account token has been invalidated"
        return claims, None

    # -- serving ---------------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        if self.down:
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request = {"method": handler.command, "path": parts.path, "query": parts.query,
                   "headers": {k.lower(): v for k, v in handler.headers.items()},
                   "body": handler.rfile.read(length).decode() if length else ""}
        with self._lock:
            self.requests.append(request)
        try:
            if self.token and request["headers"].get("authorization") != f"Bearer {self.token}":
                return self._send(handler, 401, status(401, "Unauthorized"))
            answer = self._route(request)
            if answer is not None:
                code, body, *delay = answer(request)
                if delay:
                    time.sleep(delay[0])
                if isinstance(body, Stream):
                    return self._stream(handler, (("item", i) for i in body.items))
                return self._send(handler, code, body)
            self._rest(handler, request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (e.g. it stopped watching)

    def _route(self, request):
        answer = self.routes.get((request["method"], request["path"]))
        if answer is None:
            prefix = next((p for (m, p) in self.routes if m == request["method"] and p.endswith("*")
                           and request["path"].startswith(p[:-1])), None)
            answer = self.routes.get((request["method"], prefix)) if prefix else None
        return answer

    def _rest(self, handler, request) -> None:
        segments = [unquote(s) for s in request["path"].strip("/").split("/")]
        if segments[:2] == ["api", "v1"]:
            rest = segments[2:]
        elif segments[0] == "apis" and len(segments) >= 3:
            rest = segments[3:]
        else:
            return self._send(handler, 404, status(404, "NotFound", request["path"]))
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            namespace, plural, name, sub = rest[1], rest[2], (rest[3:4] or [None])[0], rest[4:]
        elif rest:
            namespace, plural, name, sub = None, rest[0], (rest[1:2] or [None])[0], rest[2:]
        else:
            return self._send(handler, 404, status(404, "NotFound", request["path"]))
        query = {k: v[-1] for k, v in parse_qs(request["query"]).items()}
        method = request["method"]
        if plural == "services" and sub[:1] == ["proxy"]:
            return self._proxy(handler, request, namespace, name, sub[1:])
        if sub == ["log"] and method == "GET":
            text = self.logs.get((namespace, name))
            if text is None:
                return self._send(handler, 404, status(404, "NotFound", f'pods "{name}" not found'))
            return self._send(handler, 200, text, "text/plain")
        if name is None and method == "GET":
            return self._list(handler, request["path"], plural, namespace, query)
        if plural == "tokenreviews" and name is None and method == "POST":
            with self._lock:
                self.reviews += 1
            return self._send(handler, 201, self._review(json.loads(request["body"] or "{}")))
        if name is None and method == "POST":
            return self._create(handler, plural, namespace, json.loads(request["body"] or "{}"))
        with self._lock:
            found = self.get(plural, name, namespace)
        if found is None:
            return self._send(handler, 404, status(404, "NotFound", f'{plural} "{name}" not found'))
        if method == "GET":
            return self._send(handler, 200, found)
        body = json.loads(request["body"] or "{}")
        if method == "DELETE":
            want = (body.get("preconditions") or {}).get("uid")
            if want and want != found["metadata"].get("uid"):
                return self._send(handler, 409, status(409, "Conflict", "the UID in the precondition differs"))
            self.publish(plural, "DELETED", found)
            self.deletions.append((plural, namespace, name, want))
            return self._send(handler, 200, found)
        if method == "PUT":
            return self._send(handler, 200, self.publish(plural, "MODIFIED", body))
        if method == "PATCH":
            return self._send(handler, 200, self.publish(plural, "MODIFIED", _merge(found, body)))
        self._send(handler, 405, status(405, "MethodNotAllowed"))

    def _list(self, handler, path, plural, namespace, query) -> None:
        if self.refuse.get(path):
            self.refuse[path] -= 1
            return self._send(handler, 403, status(403, "Forbidden", f"{plural} is forbidden"))
        if query.get("watch", "").lower() == "true":
            if self.refuse_watch:
                return self._send(handler, 403, status(403, "Forbidden", f"{plural} is forbidden: cannot watch"))
            return self._watch(handler, plural, namespace, query)
        with self._lock:
            scripted = self.scripted_lists.get(plural)
            if scripted:
                items, version = scripted.pop(0) if len(scripted) > 1 else scripted[0]
            else:
                items, version = self.cluster.get(plural, []), str(self.version)
            items = [o for o in items if self._selected(o, namespace, query)]
        self._send(handler, 200, {"kind": LIST_KINDS.get(plural, "List"), "apiVersion": "v1",
                                  "metadata": {"resourceVersion": version}, "items": items})

    @staticmethod
    def _selected(obj: dict, namespace: str | None, query: dict) -> bool:
        meta = obj.get("metadata", {})
        return ((namespace is None or meta.get("namespace") == namespace)
                and _label_match(meta.get("labels") or {}, query.get("labelSelector", ""))
                and _field_match(obj, query.get("fieldSelector", "")))

    def _create(self, handler, plural, namespace, body) -> None:
        if namespace is not None:
            body.setdefault("metadata", {})["namespace"] = namespace
        name = body.get("metadata", {}).get("name")
        if self.get(plural, name, namespace) is not None:
            return self._send(handler, 409, status(409, "AlreadyExists", f'{plural} "{name}" already exists'))
        if plural in self.on_create:
            self.on_create[plural](body)
        self._send(handler, 201, self.publish(plural, "ADDED", body))

    def _watch(self, handler, plural, namespace, query) -> None:
        seconds = min(float(query.get("timeoutSeconds") or self.watch_seconds), self.watch_seconds)
        with self._lock:
            queue = self.scripted_watches.get(plural)
            script = queue.pop(0) if queue else None
            self.open_watches += 1
        try:
            if script is not None:
                return self._stream(handler, iter(script))
            if plural in self.scripted_lists:  # scripted resources: a watch with nothing scripted idles
                idle = seconds if self.idle_watch_seconds is None else min(seconds, self.idle_watch_seconds)
                return self._stream(handler, iter([("wait", idle)]))  # headers first, as the API server
            since = int(query.get("resourceVersion") or 0)
            return self._stream(handler, self._events(plural, namespace, query, since, time.monotonic() + seconds))
        finally:
            with self._lock:
                self.open_watches -= 1

    def _events(self, plural, namespace, query, since, deadline):
        sent = since
        while time.monotonic() < deadline and not self._closing.is_set():
            with self._lock:
                new = [(v, e) for v, k, e in self.events if k == plural and v > sent]
            for version, event in new:
                sent = version
                if self._selected(event["object"], namespace, query):
                    yield ("item", event)
            time.sleep(0.01)

    def _stream(self, handler, steps) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def chunk(payload: dict) -> None:
            line = (json.dumps(payload) + "\n").encode()
            handler.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            handler.wfile.flush()

        for step in steps:
            if step[0] == "item":
                chunk(step[1])
            elif step[0] == "event":
                chunk({"type": step[1], "object": step[2]})
            elif step[0] == "gone":
                chunk({"type": "ERROR", "object": status(410, "Expired", "too old resource version")})
            elif step[0] == "gate":
                step[1].wait(30)
            elif step[0] == "wait":
                self._closing.wait(step[1])
            elif step[0] == "drop":
                handler.wfile.write(b"40\r\n{\"type\": \"MODIFIED\", \"obj")  # a chunk cut short
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()

    def _proxy(self, handler, request, namespace, service_port, rest) -> None:
        name = service_port.split(":")
        service, port = (name[-2], name[-1]) if len(name) >= 2 else (name[0], "")
        target = self.proxies.get((namespace, service, port))
        if target is None:
            return self._send(handler, 503, status(503, "ServiceUnavailable",
                                                   f'no endpoints available for service "{service}"'))
        path = "/" + "/".join(rest)
        if callable(target):
            code, body, *content_type = target({**request, "path": path})
            return self._send(handler, code, body, *content_type)
        url = target.rstrip("/") + path + (f"?{request['query']}" if request["query"] else "")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=request["method"]), timeout=10) as reply:
                return self._send(handler, reply.status, reply.read(), reply.headers.get("Content-Type"))
        except urllib.error.HTTPError as error:
            return self._send(handler, error.code, error.read(), error.headers.get("Content-Type"))
        except OSError as error:
            return self._send(handler, 503, status(503, "ServiceUnavailable", f"error trying to reach service: "
                                                                               f"{error}"))

    @staticmethod
    def _send(handler, code: int, body, content_type: str | None = None) -> None:
        if isinstance(body, (dict, list)):
            data, content_type = json.dumps(body).encode(), content_type or "application/json"
        else:
            data = body.encode() if isinstance(body, str) else (body or b"")
        handler.send_response(code)
        handler.send_header("Content-Type", content_type or "text/plain")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
