"""The whole program: settings, preflight, hosts, cluster, outputs. `__main__.py` only calls `run()`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi

from .bundle.locks import LockError, load_lock
from .bundle.needs import needed_images, needed_snaps
from .bundle.preflight import offline_dirs, preflight
from .cluster import ClusterArgs, MicroK8sCluster, control_plane_address, hosts_entries
from .host import Host, HostArgs
from .jupyterhub import offline as _hub_offline  # noqa: F401  (registers the hub's chart and images)
from .jupyterhub.component import ADMIN_PASSWORDS_OUTPUT, JupyterHub, JupyterHubArgs
from .jupyterhub.urls import hub_url
from .settings import ConfigError, ConfigSource, Settings, load_settings
from .settings.hub_checks import check_branding_files


@dataclass
class Deployment:
    settings: Settings
    hosts: dict[str, Host]
    cluster: MicroK8sCluster
    hub: Optional[JupyterHub] = None


def build(settings: Settings) -> Deployment:
    """Register every resource for validated settings (after the offline preflight passed)."""
    images_dir, charts_dir = offline_dirs(settings)
    try:
        lock = load_lock(images_dir, charts_dir)
    except LockError as error:
        raise ConfigError([f"jhub:offline.dir / jhub:offline.chartsDir: {error}"]) from None
    preflight(settings, lock)
    air_gapped = settings.offline.air_gapped
    snaps = tuple(needed_snaps(settings, lock)) if air_gapped else ()
    images = tuple(needed_images(settings, lock)) if air_gapped else ()
    cp_address = control_plane_address(settings.control_plane)

    hosts: dict[str, Host] = {}
    for node in sorted(settings.nodes, key=lambda n: n.name):  # list order never matters
        hosts[node.name] = Host(HostArgs(
            node=node,
            settings=settings,
            control_plane_address=cp_address,
            hosts_entries=hosts_entries(settings, node),
            snaps=snaps,
            images=images,
            images_dir=images_dir,
        ))
    cluster = MicroK8sCluster(ClusterArgs(settings=settings, hosts=hosts, control_plane_address=cp_address))
    hub = JupyterHub(JupyterHubArgs(
        # A lone local node has no configured address; the values then carry the loopback one, and the
        # exported hubUrl the address the node found for itself.
        settings=settings, provider=cluster.provider, lock=lock,
        hub_url=hub_url(settings, cp_address or "127.0.0.1"),
        depends_on=[cluster.nodes_ready[settings.control_plane.name]]))
    return Deployment(settings=settings, hosts=hosts, cluster=cluster, hub=hub)


def export_outputs(deployment: Deployment) -> None:
    settings = deployment.settings
    cp = settings.control_plane
    detected = deployment.hosts[cp.name].address
    configured = control_plane_address(cp)
    pulumi.export("controlPlaneAddress", configured or detected)
    inventory = {
        node.name: pulumi.Output.all(deployment.hosts[node.name].facts,
                                     deployment.hosts[node.name].address).apply(
            lambda parts, node=node: {
                "role": node.role,
                "host": node.host,
                "address": parts[1],
                "labels": dict(node.labels),
                "facts": parts[0],
            })
        for node in sorted(settings.nodes, key=lambda n: n.name)
    }
    pulumi.export("nodes", inventory)
    pulumi.export("kubeconfig", deployment.cluster.kubeconfig)
    if deployment.hub is not None:
        url = deployment.hub.url
        if not configured:
            url = detected.apply(lambda address: hub_url(settings, address))
        pulumi.export("hubUrl", url)
        if deployment.hub.admin_passwords is not None:
            pulumi.export(ADMIN_PASSWORDS_OUTPUT, deployment.hub.admin_passwords)


def run(source: Optional[ConfigSource] = None) -> Deployment:
    settings = load_settings(source, extra_checks=(check_branding_files,))
    deployment = build(settings)
    export_outputs(deployment)
    return deployment
