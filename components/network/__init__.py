"""The NVIDIA Network Operator (`jhub:infiniband`): RDMA for servers on InfiniBand nodes.

| module | room |
|---|---|
| `chart.py` | chart version, release name, images |
| `values.py` | pure chart values (one NFD in the cluster) |
| `policy.py` | pure NicClusterPolicy: the RDMA shared device plugin, selectors from config or the facts |
| `offline.py` | what the bundle must hold |
| `component.py` | `NetworkOperator`: registers the release, then the policy |
"""

from __future__ import annotations

from ..feature import DeployContext, Feature
from . import offline


def deploy(ctx: DeployContext):
    from .component import NetworkOperator, NetworkOperatorArgs

    cluster = ctx.parts["cluster"]
    after = list(ctx.cluster_ready)
    # With the GPU Operator, its NFD (and the NodeFeatureRule CRD this chart's rule needs) comes first.
    gpu_release = getattr(ctx.parts.get("gpu"), "release", None)
    if gpu_release is not None:
        after.append(gpu_release)
    return NetworkOperator(NetworkOperatorArgs(
        settings=ctx.settings, provider=ctx.provider, lock=ctx.lock,
        facts={name: host.facts for name, host in cluster.hosts.items()}, depends_on=after))


FEATURE = Feature(
    name="network",
    enabled=lambda settings: settings.infiniband.enabled,
    bundle_tags=offline.bundle_tags,
    images=offline.images,
    deploy=deploy,
)
