"""Helm values of the Network Operator release (pure).

Exactly one Node Feature Discovery runs in the cluster: with `jhub:gpu.operator` the GPU Operator's NFD
serves both operators (its master processes this chart's NodeFeatureRule too), so this chart's NFD subchart
is off; without it, this chart brings its own. Nothing optional the site did not ask for runs: no SR-IOV
operator, no maintenance operator, no DOCA/OFED driver init container (the hosts' driver is used).
"""

from __future__ import annotations

from ..settings import Settings
from .chart import NFD_IMAGE, OPERATOR_IMAGE


def own_nfd(settings: Settings) -> bool:
    """This chart's NFD runs only when the GPU Operator (with its own NFD) does not."""
    return not settings.gpu.operator


def chart_values(settings: Settings) -> dict:
    repo, image, tag = OPERATOR_IMAGE
    nfd = own_nfd(settings)
    values = {
        "nfd": {"enabled": nfd, "deployNodeFeatureRules": True},
        "upgradeCRDs": True,
        "sriovNetworkOperator": {"enabled": False},
        "maintenanceOperator": {"enabled": False},
        "operator": {
            "repository": repo, "image": image, "tag": tag,
            "ofedDriver": {"initContainer": {"enable": False}},
        },
    }
    if nfd:
        values["node-feature-discovery"] = {"image": {"repository": NFD_IMAGE[0], "tag": NFD_IMAGE[1]}}
    return values
