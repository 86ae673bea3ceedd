"""Where the portal image comes from when `pulumi up` must provide it (online mode, or a registry mirror):
the project's one builder and import steps, `components/bundle/built.py`, with the portal's source digest as
the rebuild trigger. Air-gapped, the bundle holds the tarball (images.lock `build:` entry) and the cluster's
image step imports it."""

from __future__ import annotations

from pathlib import Path

import pulumi

from ..bundle import built
from ..bundle.locks import Lock, LockedFile
from . import images as im


def locked_entry(lock: Lock) -> LockedFile:
    entry = lock.image_for(im.PORTAL_IMAGE)
    if entry is None or entry.build is None:
        raise pulumi.RunError(f"offline-images/images.lock: no `build:` entry for the portal image {im.PORTAL_IMAGE}")
    return entry


def provide(parent: pulumi.Resource, settings, lock: Lock, hosts: dict, images_dir: Path, digest: str,
            after: list) -> list[pulumi.Resource]:
    """Build (online) or take the bundled tarball (mirror), then import it on every node."""
    entry = locked_entry(lock)
    tarball = built.build_or_bundled(parent, entry, settings, images_dir, trigger=digest)
    return [built.import_on(parent, host, entry, images_dir, tarball, after=list(after))
            for _, host in sorted(hosts.items())]
