"""What an air-gapped GPU Operator needs: its chart (feature `gpu-operator`) and every image it runs for this
config, with sub-tags for the parts a config may leave off (`:dcgm-exporter`, `:mig-manager`, `:driver`)."""

from __future__ import annotations

from ..settings import Settings
from ..settings.gpu import GpuSettings
from . import chart

FEATURE = "gpu-operator"


def bundle_tags(settings: Settings) -> set[str]:
    gpu = settings.gpu
    found = {FEATURE}
    if gpu.dcgm_exporter:
        found.add(f"{FEATURE}:dcgm-exporter")
    if gpu.uses_mig:
        found.add(f"{FEATURE}:mig-manager")
    if gpu.driver != "host":
        found.add(f"{FEATURE}:driver")
    return found


def release_images(gpu: GpuSettings) -> list[tuple[str, str]]:
    """(what needs it, image reference) for every image the operator and the smoke test run."""
    part = f"chart {chart.CHART_NAME} {chart.CHART_VERSION}"
    found = [
        (f"{part}: operator, validator and the chart's hook jobs", chart.ref(chart.OPERATOR)),
        (f"{part}: container toolkit", chart.ref(chart.TOOLKIT)),
        (f"{part}: device plugin and GPU feature discovery", chart.ref(chart.DEVICE_PLUGIN)),
        (f"{part}: node feature discovery", chart.ref(chart.NFD)),
        ("jhub:gpu: CUDA smoke test", chart.SMOKE_IMAGE),
    ]
    if gpu.dcgm_exporter:
        found.append(("jhub:gpu.dcgmExporter", chart.ref(chart.DCGM_EXPORTER)))
    if gpu.uses_mig:
        found.append(("jhub:gpu.pools[].mig: MIG manager", chart.ref(chart.MIG_MANAGER)))
    if gpu.driver != "host":
        found.append((f"jhub:gpu.driver {gpu.driver}: driver manager", chart.ref(chart.DRIVER_MANAGER)))
        found += [(f"jhub:gpu.driver {gpu.driver}: driver for {os_tag}", chart.driver_ref(os_tag))
                  for os_tag in chart.DRIVER_OS]
    return sorted(found)


def images(settings: Settings) -> list[tuple[str, str]]:
    return release_images(settings.gpu)
