"""A real CNCF distribution registry (Debian's `docker-registry`) on 127.0.0.1, fed by `skopeo` from OCI
layouts built here, and a small token service for its `auth: token:` mode.

`registry(tmp_path)` starts one with its own config and storage; `build_layout()` writes an OCI image
layout with an index of linux/amd64 and linux/arm64 images made of small random layers; `push()` copies it
in with `skopeo copy --all`. Tests skip, naming the package, when the programs are missing.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REGISTRY_BIN = shutil.which("docker-registry") or shutil.which("registry")
SKOPEO = shutil.which("skopeo")


def need_programs() -> None:
    if not REGISTRY_BIN:
        pytest.skip("needs the CNCF distribution registry: apt-get install docker-registry")
    if not SKOPEO:
        pytest.skip("needs skopeo: apt-get install skopeo")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _put(layout: Path, data: bytes) -> dict:
    digest = _digest(data)
    path = layout / "blobs" / "sha256" / digest.split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def _layer(seed: bytes, size: int) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        content = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(size // 32 + 1))
        info = tarfile.TarInfo(f"data/{seed.hex()[:8]}.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(content[:size]))
    return gzip.compress(raw.getvalue(), mtime=0)


@dataclass
class Layout:
    path: Path
    tag: str
    index_digest: str
    manifests: dict = field(default_factory=dict)  # architecture -> {"digest", "layers": [digests], ...}


def build_layout(path: Path, *, tag: str = "1.0", seed: bytes = b"jhub", layer_sizes=(4096, 300_000),
                 architectures=("amd64", "arm64")) -> Layout:
    """An OCI layout whose index has one image per architecture, each with its own random layers."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    entries, manifests = [], {}
    for arch in architectures:
        blobs = [_layer(seed + arch.encode() + bytes([i]), size) for i, size in enumerate(layer_sizes)]
        layers = [_put(path, blob) for blob in blobs]
        for layer in layers:
            layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        # diff_ids: the digests of the uncompressed layers, which containerd checks when it unpacks
        diff_ids = [_digest(gzip.decompress(blob)) for blob in blobs]
        config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/true"]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}},
                            sort_keys=True).encode()
        config_desc = dict(_put(path, config), mediaType="application/vnd.oci.image.config.v1+json")
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": config_desc, "layers": layers}, sort_keys=True).encode()
        desc = dict(_put(path, manifest), mediaType="application/vnd.oci.image.manifest.v1+json",
                    platform={"architecture": arch, "os": "linux"})
        entries.append(desc)
        manifests[arch] = {"digest": desc["digest"], "config": config_desc["digest"],
                           "layers": [layer["digest"] for layer in layers]}
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": entries}, sort_keys=True).encode()
    index_desc = dict(_put(path, index), mediaType="application/vnd.oci.image.index.v1+json",
                      annotations={"org.opencontainers.image.ref.name": tag})
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [index_desc]}))
    return Layout(path, tag, index_desc["digest"], manifests)


@dataclass
class RunningRegistry:
    host: str  # 127.0.0.1:PORT
    storage: Path
    creds: str | None = None  # user:password skopeo pushes with

    def blob_file(self, digest: str) -> Path:
        hexdigest = digest.split(":")[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"

    def push(self, layout: Layout, repository: str, tag: str | None = None, docker_types: bool = False) -> str:
        """Copy the layout in as it is, or converted to Docker's media types (a manifest list of v2 schema 2
        manifests, as most of Docker Hub and quay.io serve; the digests then change: see `raw`)."""
        ref = f"{self.host}/{repository}:{tag or layout.tag}"
        keep = ["--format", "v2s2"] if docker_types else ["--preserve-digests"]
        argv = [SKOPEO, "copy", "--all", "--quiet", "--dest-tls-verify=false", *keep,
                f"oci:{layout.path}:{layout.tag}", f"docker://{ref}"]
        if self.creds:
            argv[2:2] = ["--dest-creds", self.creds]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return ref

    def raw(self, ref: str) -> dict:
        """The manifest (or index) the registry serves for ref."""
        argv = [SKOPEO, "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]
        if self.creds:
            argv[3:3] = ["--creds", self.creds]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def htpasswd(tmp_path: Path, user: str, password: str) -> dict:
    """The registry's `auth: htpasswd:` config for one bcrypt-hashed login (it answers `Basic` challenges)."""
    import bcrypt

    path = tmp_path / "htpasswd"
    path.write_text(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    return {"htpasswd": {"realm": "jhub-test", "path": str(path)}}


@contextmanager
def registry(tmp_path: Path, *, token_auth: dict | None = None, auth: dict | None = None,
             tls: dict | None = None):
    """`tls`: {certificate, key} (PEM files) to serve HTTPS instead of plain HTTP."""
    need_programs()
    port = free_port()
    storage = tmp_path / "registry-storage"
    config = {"version": 0.1, "log": {"level": "warn"},
              "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
              "http": {"addr": f"127.0.0.1:{port}"}}
    if token_auth:
        config["auth"] = {"token": token_auth}
    if auth:
        config["auth"] = auth
    if tls:
        config["http"]["tls"] = tls
    config_path = tmp_path / "registry.yml"
    config_path.write_text(json.dumps(config))  # YAML is a superset of JSON
    log = open(tmp_path / "registry.log", "wb")
    process = subprocess.Popen([REGISTRY_BIN, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{'https' if tls else 'http'}://127.0.0.1:{port}/v2/", timeout=2,
                                       context=ssl._create_unverified_context() if tls else None)
                break
            except urllib.error.HTTPError:
                break  # 401 with token auth: it answers
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("registry did not start: " + (tmp_path / "registry.log").read_text())
                time.sleep(0.1)
        yield RunningRegistry(f"127.0.0.1:{port}", storage)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


class TokenService:
    """The token endpoint of the registry's `auth: token:` mode: checks basic credentials, then issues
    an ES256 JWT whose `x5c` header holds a self-signed certificate the registry trusts
    (`rootcertbundle`). Records each request's query and whether it carried credentials."""

    def __init__(self, tmp_path: Path, *, service: str = "jhub-test-registry", user: str = "puller",
                 password: str = "s3cret-pass", anonymous: bool = False):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.service, self.issuer, self.user, self.password = service, "jhub-test-issuer", user, password
        self.anonymous = anonymous  # anonymous clients get pull-only tokens, as on Docker Hub
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jhub test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1)).sign(self.key, hashes.SHA256()))
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.bundle = tmp_path / "token-ca.pem"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict] = []
        service_ref = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                header = self.headers.get("Authorization", "")
                user = None
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if (user, password) != (service_ref.user, service_ref.password):
                        return self._send(401, {"details": "wrong credentials"})
                service_ref.requests.append({"query": query, "user": user})
                if user is None and not service_ref.anonymous:
                    return self._send(401, {"details": "credentials required"})
                token = service_ref.token(query.get("scope", ""), user or "", pull_only=user is None)
                return self._send(200, {"token": token})

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, scope: str, user: str, *, pull_only: bool = False) -> str:
        import jwt

        access = []
        for part in scope.split(" "):
            if part.count(":") >= 2:
                kind, rest = part.split(":", 1)
                name, actions = rest.rsplit(":", 1)
                actions = [a for a in actions.split(",") if a == "pull" or not pull_only]
                access.append({"type": kind, "name": name, "actions": actions})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        return jwt.encode(claims, self.key, algorithm="ES256",
                          headers={"x5c": [base64.b64encode(self.cert_der).decode()]})

    def registry_config(self) -> dict:
        return {"realm": self.realm, "service": self.service, "issuer": self.issuer,
                "rootcertbundle": str(self.bundle)}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
