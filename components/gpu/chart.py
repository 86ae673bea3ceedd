"""The NVIDIA GPU Operator chart this version deploys, and the images its parts run.

Every image the operator runs is named in the values (repository, image, version) rather than left to the
chart's defaults, so what the cluster pulls is exactly what `offline-images/images.lock` bundles (feature
`gpu-operator`). `tests/gpu/test_chart.py` checks this table against the chart's own values.yaml.
"""

from __future__ import annotations

CHART_NAME = "gpu-operator"
CHART_VERSION = "v26.7.0"
CHART_REPO = "https://helm.ngc.nvidia.com/nvidia"
RELEASE_NAME = "gpu-operator"
NAMESPACE = "gpu-operator"
CLUSTER_POLICY = "cluster-policy"  # the ClusterPolicy the chart creates

# (repository, image, version) per part, as the chart's values take them.
OPERATOR = ("nvcr.io/nvidia", "gpu-operator", "v26.7.0")  # also the validator and the chart's hook jobs
VALIDATOR = OPERATOR
TOOLKIT = ("nvcr.io/nvidia/k8s", "container-toolkit", "v1.20.0")
DEVICE_PLUGIN = ("nvcr.io/nvidia", "k8s-device-plugin", "v0.20.0")
GFD = DEVICE_PLUGIN  # GPU feature discovery ships in the device plugin image
DCGM_EXPORTER = ("nvcr.io/nvidia/k8s", "dcgm-exporter", "4.6.0-4.8.3-distroless")
MIG_MANAGER = ("nvcr.io/nvidia/cloud-native", "k8s-mig-manager", "v0.15.0")
DRIVER = ("nvcr.io/nvidia", "driver", "595.91.07")
DRIVER_MANAGER = ("nvcr.io/nvidia/cloud-native", "k8s-driver-manager", "v0.12.0")
# The NFD subchart (node-feature-discovery 0.19.0): master, worker and gc run one image.
NFD = ("registry.k8s.io/nfd", "node-feature-discovery", "v0.19.0")
# The driver container's tag ends with the node's OS: `<version>-ubuntu22.04`.
DRIVER_OS = ("ubuntu22.04", "ubuntu24.04")

# The CUDA smoke test: nvidia-smi (injected by the NVIDIA runtime) and CUDA's vectorAdd sample.
SMOKE_IMAGE = "nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0-ubuntu22.04"

# MicroK8s's containerd, which the container toolkit configures (paths on the host).
MICROK8S_ARGS = "/var/snap/microk8s/current/args"
CONTAINERD_TEMPLATE = f"{MICROK8S_ARGS}/containerd-template.toml"
CONTAINERD_DROP_IN = f"{MICROK8S_ARGS}/conf.d/99-nvidia.toml"
CONTAINERD_SOCKET = "/var/snap/microk8s/common/run/containerd.sock"
RUNTIME_CLASS = "nvidia"

# ConfigMaps jhub writes in the operator's namespace.
DEVICE_PLUGIN_CONFIG = "time-slicing-config"  # one key per pool + `default`
DEFAULT_PLUGIN_CONFIG = "default"

# Node labels the operator reads.
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
DEPLOY_DRIVER_LABEL = "nvidia.com/gpu.deploy.driver"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"


def ref(image: tuple[str, str, str]) -> str:
    repository, name, version = image
    return f"{repository}/{name}:{version}"


def driver_ref(os_tag: str) -> str:
    return f"{ref(DRIVER)}-{os_tag}"


def image_values(image: tuple[str, str, str]) -> dict:
    repository, name, version = image
    return {"repository": repository, "image": name, "version": version}
