"""`custom.jhub`: what `hub/jhub_setup.configure(c, cfg)` reads in the hub pod (schema: hub/README.md,
checked by hub/jhub_config.py). Built from validated settings only; secrets appear as variable names."""

from __future__ import annotations

from urllib.parse import quote

from ..settings.hub import HubSettings
from ..settings.mpi import MpiSettings
from ..settings.portal import PortalSettings
from .auth_values import compact
from .hub_files import HubFile, branding_pod_path


def profiles_values(hub: HubSettings, rdma_resource: str = "") -> dict:
    """`rdma_resource`: what the Network Operator's RDMA shared device plugin advertises ("" = never offer
    InfiniBand in the form)."""
    p = hub.profiles
    return compact({
        "images": [{"name": i.name, "image": i.image, "description": i.description,
                    "default": i is hub.default_image} for i in hub.images],
        "gpuResource": p.gpu_resource,
        "gpuProductLabel": p.gpu_product_label,
        "reserve": {"cpu": p.reserve.cpu, "memoryGiB": p.reserve.memory_gib},
        "cpuPresets": None if p.cpu_presets is None else [
            {"cpu": c.cpu, "memoryGiB": c.memory_gib} for c in p.cpu_presets],
        "maxGpusPerServer": p.max_gpus_per_server,
        "nodeChoice": p.node_choice,
        # The form is built from a watch of nodes and pods (kubespawner's reflectors): no API call per render.
        "watch": True,
        "rdmaResource": rdma_resource,
    })


def spawner_values(hub: HubSettings) -> dict:
    in_home = hub.storage_in_home
    return compact({
        # Storage inside the home directory: JupyterLab starts in the home directory (so what the image put
        # there stays in view) and opens the storage folder, where saved files persist.
        "homeDir": hub.home_dir,
        "notebookDir": hub.home_dir if in_home else None,
        "defaultUrl": f"/lab/tree/{quote(in_home)}" if in_home else None,
        "nodeSelector": dict(hub.node_selector),
        "tolerations": [t.model_dump(by_alias=True, exclude_none=True) for t in hub.tolerations],
        "allowPrivilegeEscalation": hub.allow_privilege_escalation,
        "grantSudo": hub.grant_sudo,
        "readOnlyRootFilesystem": hub.read_only_root_filesystem,
        "ephemeralStorage": {"request": hub.ephemeral_storage.request or "",
                             "limit": hub.ephemeral_storage.limit or ""},
        "namedServers": {"enabled": hub.named_servers.enabled,
                         "limit": hub.named_servers.limit if hub.named_servers.enabled else 0},
    })


PORTAL_SERVICE = {"name": "portal", "oauthClientId": "service-portal"}  # what the portal signs in as


def portal_values(portal: PortalSettings, namespace: str, token_env: str, ca_file: str | None = None,
                  public_url: str | None = None, service_token_env: str | None = None) -> dict:
    """The pre-spawn limits API, and the portal as a JupyterHub service: users sign in to the portal through
    the hub (OAuth, client `service-portal`, returning to <public_url>/oauth_callback)."""
    if not portal.enabled:
        return {"enabled": False}
    service = None
    if public_url and service_token_env:
        service = {**PORTAL_SERVICE, "oauthRedirectUri": f"{public_url}/oauth_callback", "tokenEnv": service_token_env,
                   "stopServers": portal.gpu.reclaim}  # idle-GPU reclaim stops servers with the service's token
    return compact({"enabled": True, "url": portal.url_in(namespace), "tokenEnv": token_env,
                    "failOpen": portal.fail_open, "timeoutSeconds": portal.timeout_seconds,
                    "verifyTls": portal.verify_tls, "caFile": ca_file, "service": service})


def branding_values(hub: HubSettings, files: tuple[HubFile, ...]) -> dict:
    b = hub.branding
    return compact({"title": b.title, "logoFile": branding_pod_path(files, "logo"),
                    "faviconFile": branding_pod_path(files, "favicon"), "announcement": b.announcement,
                    "loginAnnouncement": b.login_announcement, "signInText": b.sign_in_text})


def mpi_values(mpi: MpiSettings, hub_namespace: str, portal_enabled: bool = False,
               image_pull_secret: str = "") -> dict:
    """Per-user MPI namespaces (hub/jhub_mpi.py); the ClusterRoles are the ones components/mpi and
    components/portal register (the portal's pod-stopper is bound in each user's namespace when it runs).

    `image_pull_secret`: the build registry's login Secret in the hub's namespace, when there is one; the hub
    copies it into each user's namespace as `PULL_SECRET_NAME` (by name only: its content never is in values)."""
    from ..mpi.admission import NAMESPACE_LABEL
    from ..mpi.rbac import PULL_SECRET_NAME, QUOTA_NAME, USER_SERVICE_ACCOUNT, portal_pod_stopper, user_role_name

    q = mpi.quota_defaults
    stopper = portal_pod_stopper(hub_namespace, portal_enabled)
    pull = {"pullSecret": {"source": image_pull_secret, "name": PULL_SECRET_NAME}} if image_pull_secret else {}
    return {**pull, "enabled": True, "namespacePrefix": mpi.namespace_prefix, "namespaceLabel": NAMESPACE_LABEL,
            "serviceAccount": USER_SERVICE_ACCOUNT,
            "userClusterRole": user_role_name(hub_namespace), "quotaName": QUOTA_NAME,
            "quotaDefaults": {"cpu": q.cpu, "memoryGiB": q.memory_gib, "gpus": q.gpus, "pods": q.pods},
            "tokenSeconds": mpi.token_hours * 3600, **({"portalPodStopper": stopper} if stopper else {})}


def custom_jhub(hub: HubSettings, portal: PortalSettings, auth: dict, token_env: str,
                branding_files: tuple[HubFile, ...], ca_file: str | None = None,
                portal_public_url: str | None = None, portal_service_token_env: str | None = None,
                mpi: MpiSettings | None = None, rdma_resource: str = "", image_pull_secret: str = "") -> dict:
    extra = ({"mpi": mpi_values(mpi, hub.namespace, portal.enabled, image_pull_secret)}
             if mpi is not None and mpi.enabled else {})
    return {
        **extra,
        "auth": auth,
        "branding": branding_values(hub, branding_files),
        "portal": portal_values(portal, hub.namespace, token_env, ca_file, portal_public_url,
                                portal_service_token_env),
        "profiles": profiles_values(hub, rdma_resource),
        "spawner": spawner_values(hub),
    }
