"""Settings -> values for the Zero to JupyterHub chart 4.4.0: plain dicts, keys sorted, deterministic.

Only keys the chart's schema knows are set (tests validate against it). What the hub computes at spawn time
(the spawn form, limits, branding, auth) is handed to `hub/jhub_setup.py` as `custom.jhub`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..settings.auth import AuthSettings
from ..settings.hub import HubSettings
from ..settings.mpi import MpiSettings
from ..settings.image_refs import split_image
from ..settings.portal import PortalSettings
from ..settings.tls import TlsSettings
from ..settings.validators import duration_seconds
from .auth_values import PORTAL_SERVICE_TOKEN_ENV, PORTAL_TOKEN_ENV, auth_values, ca_file, extra_env
from .chart import HUB_IMAGE, PAUSE_IMAGE, PROXY_IMAGE, USER_SCHEDULER_IMAGE, image_value
from .custom_values import custom_jhub
from .hub_files import HubFile, branding_volume, extra_config, extra_files
from .scheduling_values import prepuller_values, scheduling_values
from .storage_values import init_containers, storage_values, user_install_env
from .urls import portal_public_url


@dataclass(frozen=True)
class ValuesInput:
    hub: HubSettings
    auth: AuthSettings
    tls: TlsSettings
    portal: PortalSettings
    control_plane: str  # node name: the hub's database volume lives there
    hub_url: str
    hub_sources: tuple[HubFile, ...] = ()
    branding_files: tuple[HubFile, ...] = ()
    branding_config_maps: tuple[str, ...] = ()  # the ConfigMap holding each branding file, in the same order
    secret_env_names: tuple[str, ...] = ()  # variables the hub Secret holds
    hub_secret_name: str = ""
    tls_secret_name: str = ""
    mpi: Optional[MpiSettings] = None  # jhub:mpi: per-user MPI namespaces (custom.jhub.mpi)
    rdma_resource: str = ""  # jhub:infiniband's RDMA resource when the Network Operator runs
    image_pull_secret: str = ""  # the jhub:offline.buildRegistry login's Secret, for every pod of the chart


def sorted_dict(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: sorted_dict(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [sorted_dict(v) for v in value]
    return value


def hub_section(inp: ValuesInput) -> dict:
    pin = {"kubernetes.io/hostname": inp.control_plane}
    # Named servers, the authenticator and the spawn hooks are set by jhub_setup.configure (hub/README.md).
    section = {
        # Until jhub_setup.configure() sets the real authenticator, nobody can sign in (never "dummy").
        # Admins reach users' servers through JupyterHub's admin role (admin_access is deprecated).
        "config": {"JupyterHub": {"authenticator_class": "null"}},
        # The chart's default (5) stops the hub after five failed spawns in a row, and every spawn the
        # limits or the live capacity refuse counts as one: five refusals would take the hub down.
        "consecutiveFailureLimit": 0,
        # The hub's database (users, native accounts, tokens) outlives `helm uninstall` (pulumi destroy, a new
        # jhub:hub.namespace); a later install in the same namespace adopts it again.
        "db": {"pvc": {"annotations": {"helm.sh/resource-policy": "keep"}}},
        "extraConfig": extra_config(),
        "extraFiles": extra_files(inp.hub_sources, inp.auth.ca_certificate),
        "image": image_value(HUB_IMAGE),
        "nodeSelector": pin,
    }
    if inp.secret_env_names:
        section["extraEnv"] = extra_env(list(inp.secret_env_names), inp.hub_secret_name)
    volumes, mounts = branding_volume(inp.branding_files, inp.branding_config_maps)
    if volumes:
        section["extraVolumes"], section["extraVolumeMounts"] = volumes, mounts
    return section


def proxy_section(inp: ValuesInput) -> dict:
    return {
        "chp": {"image": image_value(PROXY_IMAGE), "nodeSelector": {"kubernetes.io/hostname": inp.control_plane}},
        "service": {"nodePorts": {"http": inp.hub.node_port}, "type": "NodePort"},
    }


# MicroK8s's API server port on the nodes: what a pod's traffic to the kubernetes Service becomes after DNAT,
# which is what Calico's policy sees.
API_SERVER_PORT = 16443


def network_policy(inp: ValuesInput) -> dict:
    policy = {"egressAllowRules": {"privateIPs": inp.hub.private_network_access}}
    if inp.mpi is not None and inp.mpi.enabled:  # kubectl in the notebook reaches the API server
        policy["egress"] = [{"ports": [{"port": API_SERVER_PORT, "protocol": "TCP"}]}]
    return policy


def singleuser_section(inp: ValuesInput) -> dict:
    hub = inp.hub
    name, tag = split_image(hub.default_image.image)
    return {
        "allowPrivilegeEscalation": hub.allow_privilege_escalation,
        # On premises there is no cloud metadata server to hide, and the blocker is a privileged container.
        "cloudMetadata": {"blockWithIptables": False},
        "extraEnv": user_install_env(hub),
        "fsGid": hub.user_gid,
        "image": {"name": name, "tag": tag},
        "initContainers": init_containers(hub),
        "networkPolicy": network_policy(inp),
        "podNameTemplate": "jupyter-{user_server}",
        "startTimeout": duration_seconds(hub.start_timeout),
        "storage": storage_values(hub),
        "uid": hub.user_uid,
    }


def cull_section(hub: HubSettings) -> dict:
    seconds = hub.idle_timeout_seconds
    if seconds is None:
        return {"enabled": False}
    return {"enabled": True, "every": min(600, max(60, seconds // 10)), "timeout": seconds, "users": False}


def ingress_section(inp: ValuesInput) -> dict:
    tls = inp.tls
    if not tls.enabled:
        return {"enabled": False}
    return {
        "enabled": True,
        "annotations": {
            # Notebooks upload large files and keep websockets open for hours.
            "nginx.ingress.kubernetes.io/proxy-body-size": tls.max_body_size,
            "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
            "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
        },
        "hosts": [tls.hostname],
        "ingressClassName": tls.ingress_class,
        "pathType": "Prefix",
        "tls": [{"hosts": [tls.hostname], "secretName": inp.tls_secret_name}],
    }


def chart_values(inp: ValuesInput) -> dict:
    """The whole values object for the release."""
    values = {
        "custom": {"jhub": custom_jhub(inp.hub, inp.portal, auth_values(inp.auth, inp.hub, inp.hub_url),
                                       PORTAL_TOKEN_ENV, inp.branding_files, ca_file(inp.auth),
                                       portal_public_url(inp.portal, inp.hub_url), PORTAL_SERVICE_TOKEN_ENV,
                                       inp.mpi, inp.rdma_resource, inp.image_pull_secret)},
        "cull": cull_section(inp.hub),
        "hub": hub_section(inp),
        "ingress": ingress_section(inp),
        "prePuller": prepuller_values(inp.hub, PAUSE_IMAGE),
        "proxy": proxy_section(inp),
        "scheduling": scheduling_values(inp.hub, USER_SCHEDULER_IMAGE),
        "singleuser": singleuser_section(inp),
    }
    if inp.image_pull_secret:  # the chart adds it to every pod it makes and KubeSpawner to each server's
        values["imagePullSecrets"] = [inp.image_pull_secret]
    return sorted_dict(values)
