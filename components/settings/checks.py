"""The one list of checks that span entries and sections (`CHECKS`), and the cluster's own checks.

Each check takes the parsed `Settings` and returns problem lines that start with the key path; `load_settings`
runs them all, so every problem is reported at once, before any resource is registered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import key_path
from .gpu_checks import check_gpu
from .hub_checks import check_auth, check_branding_files, check_spawner, check_storage, check_tls
from .netmpi_checks import check_infiniband, check_mpi
from .nodes import check_nodes
from .portal_checks import check_portal

if TYPE_CHECKING:
    from . import Settings

# Addons whose enable script downloads from the internet (helm repositories, manifests); on an
# air-gapped site they would hang or fail half-way, so they are refused up front.
NEEDS_INTERNET = {
    "gpu": "use jhub:gpu.operator instead (the GPU Operator from the offline bundle)",
    "nvidia": "use jhub:gpu.operator instead (the GPU Operator from the offline bundle)",
    "observability": "it installs Helm charts from the internet",
    "prometheus": "it installs Helm charts from the internet",
    "dashboard": "its images are not in the offline bundle",
    "kube-ovn": "its images are not in the offline bundle",
    "mayastor": "its images are not in the offline bundle",
    "minio": "it downloads its plugin from the internet",
    "rook-ceph": "it installs Helm charts from the internet",
    "registry": "its images are not in the offline bundle",
    "storage": "it is the deprecated name of hostpath-storage",
    "cis-hardening": "it downloads kube-bench from the internet",
}


# Addons an air-gapped site can enable: they need no image, or their images are in images.lock.
AIR_GAPPED_ADDONS = {"dns", "hostpath-storage", "helm", "helm3", "rbac", "ha-cluster", "host-access",
                     "metrics-server", "ingress", "cert-manager"}


def check_offline_addons(settings: "Settings") -> list[str]:
    offline, microk8s = settings.offline, settings.microk8s
    if not offline.air_gapped:
        return []
    problems = []
    for index, entry in enumerate(microk8s.addons):
        name = entry.split(":", 1)[0]
        if name not in AIR_GAPPED_ADDONS:
            reason = NEEDS_INTERNET.get(name, "its images are not in the offline bundle")
            problems.append(
                f'{key_path("microk8s", ("addons", index))}: addon "{name}" cannot be enabled on an '
                f"air-gapped site: {reason}"
            )
    if "dns" in [a.split(":", 1)[0] for a in microk8s.addons] and not microk8s.dns_upstreams:
        # Without an upstream the dns addon may forward to 8.8.8.8, which an air-gapped site cannot reach.
        problems.append(
            f"{key_path('microk8s', ('dnsServers',))}: is required on an air-gapped site with the dns addon: "
            "name the site's DNS servers (CoreDNS would otherwise forward to 8.8.8.8)"
        )
    return problems


CHECKS = (
    check_nodes,
    check_offline_addons,
    check_storage,
    check_spawner,
    check_auth,
    check_tls,
    check_branding_files,
    check_gpu,
    check_infiniband,
    check_mpi,
    check_portal,
)
