"""The NVIDIA Network Operator chart this version deploys, and every image it runs.

The chart names the operator and NFD images in its values; the RDMA shared device plugin image is named by
the NicClusterPolicy (the chart has no default for it), pinned here to the release's own component tag.
`tests/network/test_network_chart.py` renders the real chart and checks these against the lock.
"""

from __future__ import annotations

CHART_NAME = "network-operator"
CHART_VERSION = "26.4.1"
CHART_REPO = "https://helm.ngc.nvidia.com/nvidia"
RELEASE_NAME = "network-operator"
POLICY_NAME = "nic-cluster-policy"  # the operator reconciles only a NicClusterPolicy of this name
CRD_API = "mellanox.com/v1alpha1"

# (repository, image, tag) as the chart's values split them
OPERATOR_IMAGE = ("nvcr.io/nvidia/cloud-native", "network-operator", "v26.4.1")
NFD_IMAGE = ("nvcr.io/nvidia/mellanox/node-feature-discovery", "network-operator-v26.4.1")
RDMA_SHARED_DP_IMAGE = ("nvcr.io/nvidia/mellanox", "k8s-rdma-shared-dev-plugin", "network-operator-v26.4.1")


def operator_ref() -> str:
    repo, image, tag = OPERATOR_IMAGE
    return f"{repo}/{image}:{tag}"


def nfd_ref() -> str:
    return f"{NFD_IMAGE[0]}:{NFD_IMAGE[1]}"


def rdma_plugin_ref() -> str:
    repo, image, tag = RDMA_SHARED_DP_IMAGE
    return f"{repo}/{image}:{tag}"
