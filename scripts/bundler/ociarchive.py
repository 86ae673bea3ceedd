"""The image tarball: an OCI image layout in a tar, as `ctr images import` reads it.

Layout: `oci-layout`, `index.json`, `blobs/sha256/<hex>` for the manifest, the config and every layer.
`index.json` names the registry's own linux/amd64 manifest (its exact bytes, so its digest is the one the
lock records and `ctr images ls` shows), once per image name, each entry annotated with
`io.containerd.image.name` (the full reference containerd names the image by) and
`org.opencontainers.image.ref.name` (the tag, for OCI tools such as skopeo). The index names no other
platform, so the importer never looks for blobs that are not in the file.

No docker-archive `manifest.json` is written: containerd would turn it into a manifest of its own, with
another digest, next to the registry's.

The same inputs give a byte-identical tar: entries sorted, times, owners and modes fixed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Iterable

from . import BundleError
from .oci import INDEX_TYPES, PLATFORM

LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


def _info(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.uid, info.gid, info.uname, info.gname = size, 0, 0, 0, "", ""
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    return info


def tag_of(name: str) -> str:
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


def index_document(*, names: Iterable[str], media_type: str, digest: str, size: int) -> bytes:
    entries = [{"annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag_of(name)},
                "digest": digest, "mediaType": media_type, "platform": dict(PLATFORM), "size": size}
               for name in names]
    index = {"manifests": entries, "mediaType": INDEX_TYPES[0], "schemaVersion": 2}
    return json.dumps(index, sort_keys=True, separators=(",", ":")).encode()


def write_archive(target: Path, *, names: list[str], manifest: bytes, media_type: str, digest: str,
                  blobs: dict[str, Path]) -> None:
    """Write the tar atomically; `blobs` maps each config/layer digest to a verified file."""
    if not names:
        raise BundleError(f"{target}: an image tarball needs at least one name")
    files = {digest: manifest, **{d: p for d, p in blobs.items()}}
    tmp = target.with_name(target.name + ".tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("oci-layout", LAYOUT),
                           ("index.json", index_document(names=names, media_type=media_type, digest=digest,
                                                         size=len(manifest)))):
            tar.addfile(_info(name, len(data)), io.BytesIO(data))
        tar.addfile(_info("blobs", directory=True))
        tar.addfile(_info("blobs/sha256", directory=True))
        for blob_digest in sorted(files):
            source = files[blob_digest]
            name = "blobs/sha256/" + blob_digest.split(":", 1)[1]
            if isinstance(source, bytes):
                tar.addfile(_info(name, len(source)), io.BytesIO(source))
            else:
                with open(source, "rb") as handle:
                    tar.addfile(_info(name, os.fstat(handle.fileno()).st_size), handle)
    os.replace(tmp, target)


def verify_archive(path: Path) -> dict:
    """Read a tarball as containerd's importer does and check it: `oci-layout` version, `index.json`, and
    every blob the index reaches present with the digest of its name. Returns {name: manifest digest}."""
    found: dict[str, str] = {}
    index = layout = None
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                handle = tar.extractfile(member)
                if member.name in ("oci-layout", "index.json"):
                    data = handle.read()
                    layout, index = (data, index) if member.name == "oci-layout" else (layout, data)
                elif member.name.startswith("blobs/sha256/"):
                    hasher = hashlib.sha256()
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        hasher.update(block)
                    expected = member.name.rsplit("/", 1)[1]
                    if hasher.hexdigest() != expected:
                        raise BundleError(f"{path}: {member.name} holds sha256 {hasher.hexdigest()}")
                    found["sha256:" + expected] = member.name
    except (tarfile.TarError, OSError) as error:
        raise BundleError(f"{path}: not a readable tar ({error})") from None
    if layout is None or json.loads(layout).get("imageLayoutVersion") != "1.0.0":
        raise BundleError(f"{path}: oci-layout is missing or not version 1.0.0")
    if index is None:
        raise BundleError(f"{path}: index.json is missing")
    names = {}
    with tarfile.open(path, "r:") as tar:
        for entry in json.loads(index).get("manifests") or []:
            name = (entry.get("annotations") or {}).get("io.containerd.image.name")
            if not name:
                raise BundleError(f"{path}: an index.json entry has no io.containerd.image.name")
            manifest = _blob(tar, found, entry["digest"], path)
            document = json.loads(manifest)
            for blob in [document.get("config")] + list(document.get("layers") or []):
                if not blob or blob["digest"] not in found:
                    raise BundleError(f"{path}: {name} needs blob {blob and blob['digest']}, which is not in it")
                if tar.getmember(found[blob["digest"]]).size != blob["size"]:
                    raise BundleError(f"{path}: blob {blob['digest']} has the wrong size")
            names[name] = entry["digest"]
    return names


def _blob(tar: tarfile.TarFile, found: dict, digest: str, path: Path) -> bytes:
    if digest not in found:
        raise BundleError(f"{path}: index.json names {digest}, which is not in it")
    return tar.extractfile(found[digest]).read()
