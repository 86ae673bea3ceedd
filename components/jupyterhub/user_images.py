"""`UserImages`: the spawn form's images that the project builds itself (images/notebook/, images.lock
`build:` entries), put on every node when `pulumi up` must do it (online mode, or a registry mirror, which
cannot serve a `localhost/` image): built here by the bundle's builder and imported, as the portal's image
is (components/bundle/built.py). With `jhub:offline.buildRegistry` they are pushed there instead, and the
hub's values name each by its registry reference pinned by digest (`refs`, `pinned_hub`). Air-gapped without
a mirror, the cluster's image step imports them."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pulumi

from ..bundle import built
from ..bundle.locks import Lock
from ..settings import Settings
from ..settings.hub import HubSettings
from ..settings.base import key_path
from ..settings.image_refs import full_image


def built_choices(settings: Settings, lock: Lock):
    """The lock's `build:` entries for `jhub:hub.images`; a `localhost/` image the lock cannot build is an
    error here, since no registry could give it to the nodes."""
    refs = [full_image(choice.image) for choice in settings.hub.images]
    for i, ref in enumerate(refs):
        entry = lock.image_for(ref)
        if ref.startswith("localhost/") and (entry is None or entry.build is None):
            raise pulumi.RunError(f"{key_path('hub', ('images', i, 'image'))}: {ref} is in no registry and "
                                  "offline-images/images.lock has no `build:` entry for it")
    return built.needed(lock, refs)


def pinned_hub(hub: HubSettings, pinned: dict[str, str]) -> HubSettings:
    """The hub's settings with each image the project built (full reference -> pinned registry reference)
    replaced by its pinned name: what the spawn form, the default image and the pre-puller then use."""
    if not pinned:
        return hub
    images = [choice.model_copy(update={"image": pinned.get(full_image(choice.image), choice.image)})
              for choice in hub.images]
    return hub.model_copy(update={"images": images})


class UserImages(pulumi.ComponentResource):
    imports: list[pulumi.Resource]
    refs: dict[str, pulumi.Output[str]]  # with jhub:offline.buildRegistry: full reference -> pinned one

    def __init__(self, settings: Settings, lock: Lock, hosts: dict, images_dir: Path, depends_on: list,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("jhub:jupyterhub:UserImages", "user-images", None, opts)
        self.imports, self.refs = [], {}
        builds: list[pulumi.Resource] = []  # one at a time, in the lock's order (bases first)
        registry = settings.offline.build_registry if built.pushes(settings) else None
        for entry in built_choices(settings, lock):
            tarball = built.build_or_bundled(self, entry, settings, images_dir, after=builds)
            if registry is not None:  # the nodes pull it from there: no import
                self.refs[entry.name] = built.pinned(entry, registry, tarball)
                continue
            self.imports += [built.import_on(self, host, entry, images_dir, tarball, after=list(depends_on))
                             for _, host in sorted(hosts.items())]
        self.register_outputs({})
