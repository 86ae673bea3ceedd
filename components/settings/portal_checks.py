"""Checks of `jhub:portal` against the other sections (see checks.CHECKS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import key_path

if TYPE_CHECKING:
    from . import Settings

# Ports MicroK8s itself listens on, on every node (kubelet, API server, dqlite, cluster agent, etcd).
MICROK8S_PORTS = {10250: "the kubelet", 10255: "the kubelet", 10257: "the controller manager",
                  10259: "the scheduler", 16443: "the API server", 19001: "dqlite", 25000: "the cluster agent",
                  12379: "etcd"}


def check_portal(settings: "Settings") -> list[str]:
    """The portal's port is a hostPort on the control plane: it must not take a port someone else holds."""
    portal, problems = settings.portal, []
    if not portal.enabled or portal.url is not None:
        return problems
    where = key_path("portal", ("nodePort",))
    if portal.node_port == settings.hub.node_port:
        problems.append(f"{where}: {portal.node_port} is the hub's port (jhub:hub.nodePort); choose another, "
                        "e.g. 29781")
    if portal.node_port in MICROK8S_PORTS:
        problems.append(f"{where}: {portal.node_port} is the port of {MICROK8S_PORTS[portal.node_port]} on every "
                        "MicroK8s node; choose another, e.g. 29781")
    return problems
