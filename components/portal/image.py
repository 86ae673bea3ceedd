"""Where the portal image comes from when `pulumi up` must provide it (online mode, or a registry mirror):
the project's one builder and import steps, `components/bundle/built.py`, with the portal's source digest as
the rebuild trigger. With `jhub:offline.buildRegistry` the image is pushed there instead of imported, and
the pods name it by digest. Air-gapped, the bundle holds the tarball (images.lock `build:` entry) and the
cluster's image step imports it."""

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
            after: list) -> tuple[list[pulumi.Resource], pulumi.Input[str]]:
    """Build (online) or take the bundled tarball (mirror), then import it on every node; or, with
    jhub:offline.buildRegistry, push it there. Returns the steps to wait for and the image the pods run."""
    entry = locked_entry(lock)
    if built.pushes(settings):
        steps: list[pulumi.Resource] = []
        tarball = built.build_or_bundled(parent, entry, settings, images_dir, trigger=digest, after=steps)
        return steps, built.pinned(entry, settings.offline.build_registry, tarball)
    tarball = built.build_or_bundled(parent, entry, settings, images_dir, trigger=digest)
    return [built.import_on(parent, host, entry, images_dir, tarball, after=list(after))
            for _, host in sorted(hosts.items())], im.PORTAL_IMAGE
