"""The NVIDIA GPU Operator on the cluster (`jhub:gpu`): pure builders, what the bundle needs, the component.

| module | room |
|---|---|
| `chart.py` | chart version, release, images, MicroK8s containerd paths, the labels the operator reads |
| `values.py` | pure chart values: toolkit for MicroK8s, driver mode, dcgm-exporter, MIG and time-slicing |
| `manifests.py` | pure manifests: the namespace, the CUDA smoke Job of one node |
| `smoke.py` | the smoke test `pulumi up` runs and waits for (`python -m components.gpu.smoke`) |
| `offline.py` | what the bundle must hold for the operator |
| `component.py` | `GpuOperator`: registers the namespace, node labels, release and smoke test |
"""

from __future__ import annotations

from ..feature import DeployContext, Feature
from . import offline


def deploy(ctx: DeployContext):
    from .component import GpuOperator, GpuOperatorArgs

    part = ctx.parts["cluster"]
    return GpuOperator(GpuOperatorArgs(
        settings=ctx.settings, provider=ctx.provider, lock=ctx.lock, kubeconfig=part.cluster.kubeconfig,
        facts={name: host.facts for name, host in part.hosts.items()},
        nodes_ready=part.cluster.nodes_ready, depends_on=ctx.cluster_ready))


def outputs(operator, ctx: DeployContext):
    yield "gpus", operator.gpus


FEATURE = Feature(
    name="gpu",
    enabled=lambda settings: settings.gpu.operator,
    bundle_tags=offline.bundle_tags,
    images=offline.images,
    deploy=deploy,
    outputs=outputs,
)
