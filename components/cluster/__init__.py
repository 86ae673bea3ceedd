"""The cluster side: each node of `jhub:nodes` prepared over SSH (or locally) by the host scripts in `hosts/`,
MicroK8s installed and joined, and the Kubernetes provider every later feature deploys with.

| module | room |
|---|---|
| `host.py` | `Host`: one node's steps (scripts, prepare, install, address, images, ready + facts) |
| `component.py` | `MicroK8sCluster`: addons, join token, workers' admit/join/leave, labels, kubeconfig, provider |
| `transport.py`, `ssh_client.py` | how a step reaches its node: pulumi-command over SSH, or the local shell |
| `hostscripts.py` | the command text that runs one of `hosts/*.sh` (pure) |
| `offline.py` | what the bundle must hold for the cluster |
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from ..bundle.needs import needed_images, needed_snaps
from ..feature import DeployContext, Feature
from . import offline
from .component import ClusterArgs, MicroK8sCluster, control_plane_address, hosts_entries
from .host import Host, HostArgs


@dataclass(frozen=True)
class ClusterPart:
    hosts: dict[str, Host]
    cluster: MicroK8sCluster


def deploy(ctx: DeployContext) -> ClusterPart:
    settings, lock = ctx.settings, ctx.lock
    air_gapped = settings.offline.air_gapped
    snaps = tuple(needed_snaps(settings, lock)) if air_gapped else ()
    images = tuple(needed_images(settings, lock)) if air_gapped else ()
    hosts: dict[str, Host] = {}
    for node in sorted(settings.nodes, key=lambda n: n.name):  # list order never matters
        hosts[node.name] = Host(HostArgs(
            node=node,
            settings=settings,
            control_plane_address=ctx.control_plane_address,
            hosts_entries=hosts_entries(settings, node),
            snaps=snaps,
            images=images,
            images_dir=ctx.images_dir,
        ))
    cluster = MicroK8sCluster(ClusterArgs(settings=settings, hosts=hosts,
                                          control_plane_address=ctx.control_plane_address))
    return ClusterPart(hosts=hosts, cluster=cluster)


def detected_address(ctx: DeployContext) -> pulumi.Output[str]:
    """The control plane's address: the configured one, else what its address step found."""
    part: ClusterPart = ctx.parts["cluster"]
    if ctx.control_plane_address:
        return pulumi.Output.from_input(ctx.control_plane_address)
    return part.hosts[ctx.settings.control_plane.name].address


def outputs(part: ClusterPart, ctx: DeployContext):
    settings = ctx.settings
    yield "controlPlaneAddress", detected_address(ctx)
    inventory = {
        node.name: pulumi.Output.all(part.hosts[node.name].facts, part.hosts[node.name].address).apply(
            lambda got, node=node: {
                "role": node.role,
                "host": node.host,
                "address": got[1],
                "labels": dict(node.labels),
                "facts": got[0],
            })
        for node in sorted(settings.nodes, key=lambda n: n.name)
    }
    yield "nodes", inventory
    yield "kubeconfig", part.cluster.kubeconfig


FEATURE = Feature(
    name="cluster",
    enabled=lambda settings: True,
    bundle_tags=offline.bundle_tags,
    deploy=deploy,
    outputs=outputs,
)

__all__ = ["FEATURE", "ClusterPart", "Host", "MicroK8sCluster", "control_plane_address", "detected_address"]
