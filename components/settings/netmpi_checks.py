"""Checks of `jhub:infiniband` and `jhub:mpi` that span sections (part of `checks.CHECKS`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import key_path

if TYPE_CHECKING:
    from . import Settings


def check_mpi(settings: "Settings") -> list[str]:
    if not settings.mpi.enabled:
        return []
    addons = {entry.split(":", 1)[0] for entry in settings.microk8s.addons}
    if "rbac" not in addons:
        # Without RBAC the API server allows every request: a user's ServiceAccount would reach every namespace.
        return [f"{key_path('mpi', ('enabled',))}: needs the rbac addon (add \"rbac\" to jhub:microk8s.addons); "
                "without it every user's MPI ServiceAccount could act in every namespace"]
    return []


def check_infiniband(settings: "Settings") -> list[str]:
    ib = settings.infiniband
    if not ib.enabled:
        return []
    problems = []
    if ib.resource_name == settings.hub.profiles.gpu_resource:
        problems.append(f"{key_path('infiniband', ('resourceName',))}: \"{ib.resource_name}\" is the GPU resource "
                        "(jhub:hub.profiles.gpuResource); choose another name such as rdma/rdma_shared_device_a")
    if ib.namespace == settings.hub.namespace:
        problems.append(f"{key_path('infiniband', ('namespace',))}: must differ from jhub:hub.namespace "
                        f"(\"{ib.namespace}\"): turning InfiniBand off deletes this namespace")
    return problems
