"""Push an image tarball of the bundle (`ociarchive`: the images the project builds) to a registry, with the
OCI distribution API of `oci.py`, Python alone: every blob the manifest names (skipped when the registry has
it), then the manifest's own bytes under the tag, so the registry serves it at the digest the tarball and the
lock record. Pods then pull `<registry>/<name>:<tag>@<digest>` (components/bundle/built.py).

The login comes from `JHUB_PUSH_USERNAME`/`JHUB_PUSH_PASSWORD` (what `pulumi up` passes from
`jhub:offline.buildRegistryUsername`/`buildRegistryPassword`), else from the auth files of `auth.py`;
`JHUB_REGISTRY_CA_FILE` names a CA to trust (fetch.py), `JHUB_INSECURE_REGISTRIES` a registry spoken to over
plain HTTP. Every failure names the registry reference and the image.
"""

from __future__ import annotations

import json
import os
import tarfile
import urllib.parse
from pathlib import Path
from typing import Optional

from . import BundleError
from .oci import Reference, Registry, parse_reference, sha256_digest
from .ociarchive import verify_archive

UPLOAD_TIMEOUT_S = 3600  # one layer of the gpu image is several GB


def target_reference(ref: str, registry: str) -> str:
    """`localhost/jhub-portal:0.1.0`, `harbor.local/jhub` -> `harbor.local/jhub/jhub-portal:0.1.0`."""
    return f"{registry.rstrip('/')}/{ref.rsplit('/', 1)[-1]}"


def _logins(target: Reference, env: dict) -> dict:
    user, password = env.get("JHUB_PUSH_USERNAME"), env.get("JHUB_PUSH_PASSWORD")
    return {target.registry: (user, password or "")} if user else {}


def _fail(target: Reference, image: str, what: str, response) -> BundleError:
    with response:
        text = response.read()[:300].decode(errors="replace").strip()
    return BundleError(f"push of {image} to {target}: {what} answered HTTP {response.status}"
                       + (f": {text}" if text else "")
                       + (" (check jhub:offline.buildRegistryUsername/Password: the login needs push rights)"
                          if response.status in (401, 403) else ""))


def push_archive(tarball: Path, image: str, registry: str, *, env: Optional[dict] = None) -> str:
    """Push the tarball's image (named `image` in it) as `<registry>/<name>:<tag>`; returns its digest."""
    env = os.environ if env is None else env
    names = verify_archive(tarball)  # every blob there, each with its digest
    if image not in names:
        raise BundleError(f"push of {image}: {tarball} holds {', '.join(sorted(names)) or 'no image'}, not it")
    digest = names[image]
    target = parse_reference(target_reference(image, registry))
    client = Registry(env=env, timeout=UPLOAD_TIMEOUT_S, logins=_logins(target, env))
    try:
        with tarfile.open(tarball, "r:") as tar:
            def member(blob: str) -> tarfile.TarInfo:
                return tar.getmember("blobs/sha256/" + blob.split(":", 1)[1])

            manifest = tar.extractfile(member(digest)).read()
            document = json.loads(manifest)
            media_type = document.get("mediaType") or json.loads(tar.extractfile("index.json").read())[
                "manifests"][0]["mediaType"]
            for blob in [document["config"]] + list(document.get("layers") or []):
                _push_blob(client, target, image, blob["digest"], lambda b=blob: tar.extractfile(member(b["digest"])),
                           member(blob["digest"]).size)
        _put_manifest(client, target, image, manifest, media_type, digest)
    except BundleError as error:
        message = str(error)
        raise BundleError(message if message.startswith("push of") else f"push of {image} to {target}: {message}") \
            from None
    return digest


def _push_blob(client: Registry, target: Reference, image: str, digest: str, opener, size: int) -> None:
    with client.open(target, f"blobs/{digest}", method="HEAD") as response:
        if response.status == 200:
            return  # the registry has it (another image of the family shares it)
    started = client.open(target, "blobs/uploads/", method="POST", headers={"Content-Length": "0"},
                          body=lambda: b"")
    if started.status != 202 or not started.headers.get("Location"):
        raise _fail(target, image, f"starting the upload of {digest}", started)
    started.close()
    location = urllib.parse.urljoin(client._url(target, "blobs/uploads/"), started.headers["Location"])
    location += ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})
    done = client.open(target, "", method="PUT", url=location, body=opener,
                       headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})
    if done.status != 201:
        raise _fail(target, image, f"the upload of {digest}", done)
    done.close()


def _put_manifest(client: Registry, target: Reference, image: str, manifest: bytes, media_type: str,
                  digest: str) -> None:
    done = client.open(target, f"manifests/{target.tag}", method="PUT", body=lambda: manifest,
                       headers={"Content-Type": media_type, "Content-Length": str(len(manifest))})
    if done.status != 201:
        raise _fail(target, image, "the manifest", done)
    said = done.headers.get("Docker-Content-Digest")
    done.close()
    if sha256_digest(manifest) != digest or (said and said != digest):
        raise BundleError(f"push of {image} to {target}: the registry stored the manifest as {said}, not {digest}")
