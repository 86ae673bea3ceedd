"""Which locked files a config needs: the lock feature tags and images of every enabled feature
(`components/features.py`), matched against lock entries."""

from __future__ import annotations

from ..settings import Settings
from .locks import Lock, LockedFile


def features(settings: Settings) -> set[str]:
    from ..features import enabled_features  # the features import this module to deploy

    return {tag for feature in enabled_features(settings) for tag in feature.bundle_tags(settings)}


def configured_images(settings: Settings) -> list[tuple[str, str]]:
    """(key path or chart part, image reference) of every image an enabled feature runs for this config."""
    from ..features import enabled_features

    return sorted({pair for feature in enabled_features(settings) for pair in feature.images(settings)})


def needed_snaps(settings: Settings, lock: Lock) -> list[LockedFile]:
    return lock.snap_files_for(settings.microk8s.channel)


def needed_images(settings: Settings, lock: Lock) -> list[LockedFile]:
    """Image tarballs every node imports; none when containerd pulls through the site's registry."""
    if settings.offline.uses_mirror:
        return []
    wanted = features(settings)
    chosen = {f.path: f for f in lock.images if wanted & set(f.features)}
    for _, ref in configured_images(settings):
        found = lock.image_for(ref)
        if found is not None:
            chosen[found.path] = found
    return sorted(chosen.values(), key=lambda f: f.path)


def needed_charts(settings: Settings, lock: Lock) -> list[LockedFile]:
    wanted = features(settings)
    return sorted((f for f in lock.charts if wanted & set(f.features)), key=lambda f: f.path)


def needed_manifests(settings: Settings, lock: Lock) -> list[LockedFile]:
    wanted = features(settings)
    return sorted((f for f in lock.manifests if wanted & set(f.features)), key=lambda f: f.path)
