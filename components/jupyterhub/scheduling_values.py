"""Where user pods run: the chart's user scheduler (packing GPU pods) and the image pre-puller.

With `jhub:hub.scheduling.packGpuPods` the user scheduler scores nodes MostAllocated, with GPUs weighted
`gpuWeight` times CPU and memory: a new server goes to the busiest node it fits on, so whole nodes stay
free for large GPU jobs. Placeholder pods (cloud autoscaling) are off: these clusters do not autoscale.
"""

from __future__ import annotations

from ..settings.hub import HubSettings
from ..settings.image_refs import split_image
from .chart import image_value


def scheduling_values(hub: HubSettings, scheduler_image: tuple[str, str]) -> dict:
    pack = hub.scheduling
    values: dict = {
        "podPriority": {"enabled": False},
        "userPlaceholder": {"enabled": False},
        "userScheduler": {"enabled": pack.pack_gpu_pods},
    }
    if pack.pack_gpu_pods:
        resources = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1},
                     {"name": hub.profiles.gpu_resource, "weight": pack.gpu_weight}]
        values["userScheduler"].update({
            "image": image_value(scheduler_image),
            "pluginConfig": [{"args": {"scoringStrategy": {"resources": resources, "type": "MostAllocated"}},
                              "name": "NodeResourcesFit"}],
            "replicas": pack.replicas,
        })
    return values


def prepuller_values(hub: HubSettings, pause_image: tuple[str, str]) -> dict:
    """The hook puller (which holds `helm upgrade` until every node pulled) is always off; the continuous
    puller pulls every configured image on every node when `prePullImages` is on. Air-gapped nodes import
    the images from the bundle instead."""
    values: dict = {"continuous": {"enabled": hub.pre_pull_images}, "hook": {"enabled": False},
                    "pullProfileListImages": False}
    if hub.pre_pull_images:
        default = hub.default_image.name
        values["extraImages"] = {
            f"jhub-{choice.name}": dict(zip(("name", "tag"), split_image(choice.image)))
            for choice in hub.images if choice.name != default
        }
        values["pause"] = {"image": image_value(pause_image)}
    return values
