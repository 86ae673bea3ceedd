"""Which locked files a config needs: features named by the config, matched against lock entries."""

from __future__ import annotations

from typing import Callable, Iterable

from ..settings import Settings
from .locks import Lock, LockedFile

# Later features (hub, portal, operators) register a function here that names their features and images.
FeatureSource = Callable[[Settings], Iterable[str]]
_FEATURE_SOURCES: list[FeatureSource] = []
ImageSource = Callable[[Settings], Iterable[tuple[str, str]]]
_IMAGE_SOURCES: list[ImageSource] = []


def register_features(source: FeatureSource) -> FeatureSource:
    _FEATURE_SOURCES.append(source)
    return source


def register_images(source: ImageSource) -> ImageSource:
    """`source(settings)` yields (config key path, image reference) for images chosen in config."""
    _IMAGE_SOURCES.append(source)
    return source


def features(settings: Settings) -> set[str]:
    needed = {"microk8s"}
    needed |= {f"addon:{line.split(':', 1)[0]}" for line in settings.microk8s.addons}
    for source in _FEATURE_SOURCES:
        needed |= set(source(settings))
    return needed


def configured_images(settings: Settings) -> list[tuple[str, str]]:
    return sorted({pair for source in _IMAGE_SOURCES for pair in source(settings)})


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
