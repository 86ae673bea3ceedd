"""One lock image entry -> one verified tarball, with the registry alone.

Blobs go to `<bundle>/.blobs/sha256/<hex>` first (resumable, verified), then into the tarball; they are
removed once the tarball is written. A blob another tarball of the bundle already holds is copied from it.
The lock entry gets `digest` (the linux/amd64 manifest digest) and `sha256` (of the tarball). An entry that
already has a `digest` is fetched by it, so a moved tag does not change what the bundle holds; `refresh`
resolves the tag again.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Optional

from . import BundleError
from .fetch import Expected, download, file_digest
from .oci import PLATFORM, Reference, Registry, parse_reference
from .ociarchive import write_archive

BLOB_DIR = ".blobs/sha256"


def image_names(entry: dict) -> list[str]:
    return [entry["ref"]] + list(entry.get("alsoTagged") or [])


def source_reference(ref: str, mirror: Optional[str] = None) -> Reference:
    """Where to fetch `ref` from: its own registry, or a mirror holding copies under
    `<mirror>/<registry>/<repository>` (as `skopeo sync`/regsync-style mirrors lay them out)."""
    parsed = parse_reference(ref)
    if not mirror:
        return parsed
    return parse_reference(f"{mirror.rstrip('/')}/{parsed.registry}/{parsed.repository}"
                           + (f":{parsed.tag}" if parsed.tag else "") + (f"@{parsed.digest}" if parsed.digest else ""))


def fetch_image(entry: dict, images_dir: Path, *, registry: Optional[Registry] = None,
                refresh: bool = False, mirror: Optional[str] = None) -> None:
    registry = registry or Registry()
    ref = source_reference(entry["ref"], mirror)
    image = registry.resolve(ref, None if refresh else entry.get("digest"))
    print(f"+ {entry['ref']}: linux/amd64 manifest {image.digest}", file=sys.stderr, flush=True)
    blobs: dict[str, Path] = {}
    bundled = bundled_blobs(images_dir / "images", skip=images_dir / entry["file"])
    for descriptor in image.blobs:
        digest = descriptor["digest"]
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or len(hexdigest) != 64:
            raise BundleError(f"{entry['ref']}: blob digest {digest!r} is not sha256")
        path = images_dir / BLOB_DIR / hexdigest
        if digest in bundled and not path.exists():
            _copy_member(bundled[digest], "blobs/sha256/" + hexdigest, path)  # checked by download() below
        download(lambda offset, d=digest: registry.open_blob(ref, d, offset), path,
                 Expected("sha256", hexdigest, descriptor.get("size")), f"{entry['ref']} blob {hexdigest[:12]}")
        blobs[digest] = path
    _check_platform(entry["ref"], blobs[image.config["digest"]])
    target = images_dir / entry["file"]
    write_archive(target, names=image_names(entry), manifest=image.manifest, media_type=image.media_type,
                  digest=image.digest, blobs={d: p for d, p in blobs.items()})
    entry["digest"] = image.digest
    entry["sha256"] = file_digest(target, "sha256")
    for path in blobs.values():
        path.unlink(missing_ok=True)


def bundled_blobs(folder: Path, skip: Path) -> dict[str, Path]:
    """digest -> a tarball already in the bundle that holds that blob: images often share base layers
    (the Jupyter notebook images share gigabytes), which are then copied, not downloaded again."""
    found: dict[str, Path] = {}
    for tarball in sorted(folder.glob("*.tar")) if folder.is_dir() else []:
        if tarball == skip:
            continue
        try:
            with tarfile.open(tarball, "r:") as tar:
                for member in tar:
                    if member.isfile() and member.name.startswith("blobs/sha256/"):
                        found.setdefault("sha256:" + member.name.rsplit("/", 1)[1], tarball)
        except (tarfile.TarError, OSError):
            continue  # not one of ours, or damaged: its blobs are downloaded
    return found


def _copy_member(tarball: Path, name: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".copy")
    try:
        with tarfile.open(tarball, "r:") as tar, open(tmp, "wb") as out:
            shutil.copyfileobj(tar.extractfile(name), out, 1 << 20)
        os.replace(tmp, target)
    except (tarfile.TarError, OSError, KeyError):
        tmp.unlink(missing_ok=True)


def _check_platform(name: str, config_path: Path) -> None:
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        raise BundleError(f"{name}: the image config is not JSON") from None
    have = {k: config.get(k) for k in PLATFORM}
    if have != PLATFORM:
        raise BundleError(f"{name}: the image is for {have.get('os')}/{have.get('architecture')}, "
                          "the nodes need linux/amd64")
