"""What an air-gapped install of the Network Operator needs: the chart archive (feature `network-operator`), the
operator and RDMA device plugin images, and NFD's image when this chart runs its own NFD
(`network-operator:nfd`)."""

from __future__ import annotations

from ..settings import Settings
from ..settings.image_refs import full_image
from .chart import CHART_NAME, CHART_VERSION, nfd_ref, operator_ref, rdma_plugin_ref
from .values import own_nfd

FEATURE = "network-operator"
NFD_FEATURE = f"{FEATURE}:nfd"


def bundle_tags(settings: Settings) -> set[str]:
    return {FEATURE} | ({NFD_FEATURE} if own_nfd(settings) else set())


def images(settings: Settings) -> list[tuple[str, str]]:
    chart = f"chart {CHART_NAME} {CHART_VERSION}"
    found = [(f"{chart}: operator", full_image(operator_ref())),
             ("jhub:infiniband: NicClusterPolicy rdmaSharedDevicePlugin", full_image(rdma_plugin_ref()))]
    if own_nfd(settings):
        found.append((f"{chart}: node-feature-discovery (jhub:gpu.operator is false)", full_image(nfd_ref())))
    return found
