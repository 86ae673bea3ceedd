"""What an air-gapped install of the hub needs: the chart archive (feature `jupyterhub`) and every image
the release runs for this config, chart images and user images alike, so the preflight names any image
missing from `offline-images/images.lock` before a host is touched."""

from __future__ import annotations

from ..settings import Settings
from ..settings.base import key_path
from ..settings.hub import HubSettings
from ..settings.image_refs import full_image
from .chart import CHART_NAME, CHART_VERSION, HUB_IMAGE, PAUSE_IMAGE, PROXY_IMAGE, USER_SCHEDULER_IMAGE

FEATURE = "jupyterhub"


def release_images(hub: HubSettings) -> list[tuple[str, str]]:
    """(what needs it, full image reference) for every image the release runs with these settings."""
    chart = f"chart {CHART_NAME} {CHART_VERSION}"
    parts = [("hub", HUB_IMAGE), ("proxy", PROXY_IMAGE)]
    if hub.scheduling.pack_gpu_pods:
        parts.append(("user scheduler, jhub:hub.scheduling.packGpuPods", USER_SCHEDULER_IMAGE))
    if hub.pre_pull_images:
        parts.append(("image puller, jhub:hub.prePullImages", PAUSE_IMAGE))
    found = [(f"{chart}: {what}", full_image(f"{name}:{tag}")) for what, (name, tag) in parts]
    found += [(key_path("hub", ("images", i, "image")), full_image(choice.image))
              for i, choice in enumerate(hub.images)]
    return found


def bundle_tags(settings: Settings) -> set[str]:
    hub = settings.hub
    found = {FEATURE}
    if hub.scheduling.pack_gpu_pods:
        found.add(f"{FEATURE}:user-scheduler")
    if hub.pre_pull_images:
        found.add(f"{FEATURE}:image-puller")
    return found


def images(settings: Settings) -> list[tuple[str, str]]:
    return release_images(settings.hub)
