"""A small client of the OCI distribution API (the registry protocol of Docker Hub, ghcr.io, quay.io,
registry.k8s.io, nvcr.io and the CNCF distribution registry): pull one image's linux/amd64 manifest, its
config and layers, each checked against its sha256 digest.

Auth follows the registries' challenge: a 401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`
is answered by fetching a token from the realm (anonymously, or with the credentials of `auth.py` as basic
auth), then retrying with `Authorization: Bearer <token>`; a `Basic` challenge is answered with the
credentials. Hosts in `JHUB_INSECURE_REGISTRIES` (comma-separated `host:port`) are spoken to over plain
HTTP: a site mirror or a test registry on loopback.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Optional

from . import BundleError
from .auth import basic, credentials_for, parse_challenge
from .fetch import request

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
ACCEPT = ", ".join(INDEX_TYPES + MANIFEST_TYPES)
PLATFORM = {"architecture": "amd64", "os": "linux"}
DOCKER_HUB = "docker.io"
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Reference:
    registry: str  # as written in the ref: docker.io, quay.io, 127.0.0.1:5000
    repository: str  # library/busybox
    tag: Optional[str]
    digest: Optional[str]

    @property
    def api_host(self) -> str:
        return "registry-1.docker.io" if self.registry == DOCKER_HUB else self.registry

    def __str__(self) -> str:
        name = f"{self.registry}/{self.repository}"
        return name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_reference(ref: str) -> Reference:
    """`docker.io/calico/node:v3.28.1`, `busybox`, `quay.io/x/y@sha256:...` -> Reference."""
    rest, _, digest = ref.partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = DOCKER_HUB, rest
    name, tag = path.rsplit(":", 1) if ":" in path.rsplit("/", 1)[-1] else (path, "")
    if registry == DOCKER_HUB and "/" not in name:
        name = f"library/{name}"
    if not name or (digest and not digest.startswith("sha256:")):
        raise BundleError(f"image reference {ref!r}: expected [registry/]repository[:tag][@sha256:...]")
    return Reference(registry, name, tag or (None if digest else "latest"), digest or None)


@dataclass(frozen=True)
class Image:
    """One platform's manifest, exactly as the registry serves it (its bytes give its digest)."""

    ref: Reference
    manifest: bytes
    media_type: str
    digest: str  # sha256:... of `manifest`
    config: dict  # descriptor
    layers: tuple[dict, ...]  # descriptors

    @property
    def blobs(self) -> tuple[dict, ...]:
        return (self.config,) + self.layers


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    def __init__(self, *, env: Optional[dict] = None, timeout: float = 60,
                 logins: Optional[dict[str, tuple[str, str]]] = None):
        env = os.environ if env is None else env
        self.insecure = {h.strip() for h in env.get("JHUB_INSECURE_REGISTRIES", "").split(",") if h.strip()}
        self.timeout = timeout
        self.logins = dict(logins or {})  # host -> (user, password), before the auth files (push.py)
        self._tokens: dict[tuple[str, str], str] = {}  # (host, repository) -> Authorization value

    def _url(self, ref: Reference, path: str) -> str:
        scheme = "http" if ref.registry in self.insecure or ref.api_host in self.insecure else "https"
        return f"{scheme}://{ref.api_host}/v2/{ref.repository}/{path}"

    def _authorize(self, ref: Reference, challenge: str, *, own_host: bool = True) -> str:
        scheme, params = parse_challenge(challenge)
        creds = None
        if own_host:  # a login is for its own registry only
            creds = self.logins.get(ref.registry) or credentials_for(ref.registry)
        if scheme == "basic":
            if creds is None:
                raise BundleError(f"{ref}: the registry asks for a login; add it to ~/.docker/config.json "
                                  "(or REGISTRY_AUTH_FILE) as auths.<host>.auth")
            return basic(creds)
        if scheme != "bearer" or not params.get("realm"):
            raise BundleError(f"{ref}: unsupported registry challenge {challenge!r}")
        query = {"service": params.get("service", ""), "scope": params.get("scope") or
                 f"repository:{ref.repository}:pull"}
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urllib.parse.urlencode(
            {k: v for k, v in query.items() if v})
        response = request(url, auth=basic(creds) if creds else None, timeout=self.timeout,
                           headers={"Accept": "application/json"})
        with response:
            body = response.read()
        if response.status != 200:
            hint = " (check the credentials for it)" if creds else " (it may need a login: see auth.py)"
            raise BundleError(f"{ref}: the token service {params['realm']} answered HTTP {response.status}{hint}")
        try:
            answer = json.loads(body)
            token = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise BundleError(f"{ref}: the token service {params['realm']} sent no token")
        return f"Bearer {token}"

    def open(self, ref: Reference, path: str, *, headers: Optional[dict] = None, method: str = "GET",
             body: Optional[Callable[[], object]] = None, url: Optional[str] = None):
        """GET (or `method`) a registry path of `ref`'s repository, or `url` (an upload's Location).
        Redirects are followed here, so that each host gets only its own token: registry.k8s.io sends clients
        on to regional registries that challenge them again, Docker Hub and quay.io send blobs to CDNs that
        must get no Authorization at all. `body` gives the request's data afresh for each try (a file is read
        once per try)."""
        url = url or self._url(ref, path)
        for _ in range(MAX_REDIRECTS):
            host = urllib.parse.urlsplit(url).netloc
            key = (host, ref.repository)
            response = request(url, method=method, headers=headers, data=body() if body else None,
                               auth=self._tokens.get(key), timeout=self.timeout, follow=False)
            if response.status == 401:
                challenge = response.headers.get("WWW-Authenticate", "")
                response.close()
                self._tokens[key] = self._authorize(ref, challenge, own_host=host == ref.api_host)
                response = request(url, method=method, headers=headers, data=body() if body else None,
                                   auth=self._tokens[key], timeout=self.timeout, follow=False)
            if response.status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                url = urllib.parse.urljoin(url, response.headers["Location"])
                response.close()
                continue
            return response
        raise BundleError(f"{ref}: more than {MAX_REDIRECTS} redirects for {path}")

    def _manifest(self, ref: Reference, reference: str) -> tuple[bytes, str, str]:
        response = self.open(ref, f"manifests/{reference}", headers={"Accept": ACCEPT})
        with response:
            body = response.read()
        if response.status != 200:
            raise BundleError(f"{ref}: manifest {reference} not found (HTTP {response.status}: "
                              f"{body[:200].decode(errors='replace').strip()})")
        digest = sha256_digest(body)
        if reference.startswith("sha256:") and digest != reference:
            raise BundleError(f"{ref}: the registry sent a manifest whose sha256 is {digest}, not {reference}")
        said = response.headers.get("Docker-Content-Digest")
        if said and said.startswith("sha256:") and said != digest:
            raise BundleError(f"{ref}: manifest bytes hash to {digest} but the registry says {said}")
        try:
            media_type = json.loads(body).get("mediaType") or response.headers.get("Content-Type", "")
        except (ValueError, AttributeError):
            raise BundleError(f"{ref}: the manifest is not JSON") from None
        return body, media_type.split(";")[0].strip(), digest

    def resolve(self, ref: Reference, pinned: Optional[str] = None) -> Image:
        """The linux/amd64 image of `ref` (by the pinned digest when given, else by its digest or tag)."""
        reference = pinned or ref.digest or ref.tag
        for _ in range(3):  # an index may name another index
            body, media_type, digest = self._manifest(ref, reference)
            document = json.loads(body)
            if media_type in INDEX_TYPES or ("manifests" in document and "layers" not in document):
                reference = _pick_platform(ref, document)
                continue
            if media_type not in MANIFEST_TYPES and "layers" not in document:
                raise BundleError(f"{ref}: unsupported manifest type {media_type!r} (schema 1 images cannot "
                                  "be bundled; push the image again with a current client)")
            return Image(ref, body, media_type or MANIFEST_TYPES[0], digest, document["config"],
                         tuple(document.get("layers") or ()))
        raise BundleError(f"{ref}: image indexes nest too deep")

    def open_blob(self, ref: Reference, digest: str, offset: int = 0):
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        return self.open(ref, f"blobs/{digest}", headers=headers)


def _pick_platform(ref: Reference, index: dict) -> str:
    seen = []
    for entry in index.get("manifests") or []:
        platform = entry.get("platform") or {}
        seen.append(f"{platform.get('os', '?')}/{platform.get('architecture', '?')}")
        if all(platform.get(k) == v for k, v in PLATFORM.items()) and platform.get("variant") in (None, "", "v1"):
            return entry["digest"]
    raise BundleError(f"{ref}: no linux/amd64 image in its index (it has: {', '.join(seen) or 'nothing'})")
