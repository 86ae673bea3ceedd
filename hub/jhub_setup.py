"""The one entry point: `configure(c, cfg)` applies the validated `custom.jhub` to the hub's config.

In the hub pod, hub.extraConfig runs (see hub/README.md):

    import sys; sys.path.insert(0, "/usr/local/etc/jupyterhub/jhub")
    import jhub_setup; jhub_setup.configure(c, get_config("custom.jhub"))

It runs after the chart's own jupyterhub_config.py, so it extends what the chart set (volumes, tolerations,
node selector, hooks) instead of replacing it. Nothing is applied unless the whole config is valid.
"""

import os

from jhub_auth import authenticator_config
from jhub_branding import hub_traits
from jhub_config import ConfigError, validate
from jhub_capacity import RequestCache
from jhub_kube import ClusterSource
from jhub_mpi import make_modify_pod_hook as mpi_modify_pod_hook
from jhub_notices import NoticeCache
from jhub_profiles import make_profile_list
from jhub_spawn_check import make_hooks

TMP_VOLUME = "jhub-tmp"
STATE_DIR = "/tmp/.jhub"  # on the /tmp emptyDir: Jupyter's per-session state with a read-only root


def read_only_state_env(home: str) -> dict:
    """With a read-only root filesystem the home directory is read-only too, and Jupyter writes state there at
    start (jupyter_core's runtime dir ~/.local/share/jupyter/runtime, JupyterLab's settings and workspaces in
    ~/.jupyter/lab, IPython's profile, caches): every such place moves to the /tmp emptyDir. JUPYTER_PATH keeps
    the kernels and extensions the image installed in ~/.local/share/jupyter in the search path."""
    return {
        "JUPYTER_RUNTIME_DIR": f"{STATE_DIR}/jupyter/runtime",
        "JUPYTER_DATA_DIR": f"{STATE_DIR}/jupyter/data",
        "JUPYTER_PATH": f"{home.rstrip('/')}/.local/share/jupyter",
        "JUPYTERLAB_SETTINGS_DIR": f"{STATE_DIR}/jupyter/lab/user-settings",
        "JUPYTERLAB_WORKSPACES_DIR": f"{STATE_DIR}/jupyter/lab/workspaces",
        "IPYTHONDIR": f"{STATE_DIR}/ipython",
        "MPLCONFIGDIR": f"{STATE_DIR}/matplotlib",
        "XDG_CACHE_HOME": f"{STATE_DIR}/cache",
    }


def _get(section, name, default):
    return section[name] if name in section else default


def _as_list(value) -> list:
    return [value[k] for k in sorted(value)] if isinstance(value, dict) else list(value or [])


def _add(container, key: str, item):
    """Append to a KubeSpawner list-or-dict trait value (the chart may use either form)."""
    if isinstance(container, dict):
        container[key] = item
    else:
        container.append(item)
    return container


def spawner_traits(cfg: dict, current) -> dict:
    """KubeSpawner traits from the `spawner` section, merged into `current` (c.KubeSpawner)."""
    sp = cfg["spawner"]
    env = dict(_get(current, "environment", {}))
    csc = dict(_get(current, "container_security_context", {}))
    csc["allowPrivilegeEscalation"] = sp["allowPrivilegeEscalation"]
    csc["privileged"] = False
    traits = {"allow_privilege_escalation": sp["allowPrivilegeEscalation"]}
    if sp["grantSudo"]:
        env["GRANT_SUDO"] = "yes"
        traits["uid"] = 0  # the docker-stacks entrypoint grants sudo as root, then drops to the notebook user
    else:
        env.pop("GRANT_SUDO", None)
    if sp["readOnlyRootFilesystem"]:
        csc["readOnlyRootFilesystem"] = True
        env.update(read_only_state_env(sp["homeDir"]))
        vols = _get(current, "volumes", [])
        mounts = _get(current, "volume_mounts", [])
        traits["volumes"] = _add(vols if isinstance(vols, dict) else list(vols), TMP_VOLUME,
                                 {"name": TMP_VOLUME, "emptyDir": {}})
        traits["volume_mounts"] = _add(mounts if isinstance(mounts, dict) else list(mounts), TMP_VOLUME,
                                       {"name": TMP_VOLUME, "mountPath": "/tmp"})
    if sp["notebookDir"]:
        traits["notebook_dir"] = sp["notebookDir"]  # JUPYTERHUB_ROOT_DIR: where JupyterLab's file browser starts
    if sp["defaultUrl"]:
        traits["default_url"] = sp["defaultUrl"]  # JUPYTERHUB_DEFAULT_URL: what a new server opens
    traits["environment"] = env
    traits["container_security_context"] = csc
    if sp["nodeSelector"]:
        traits["node_selector"] = {**dict(_get(current, "node_selector", {})), **sp["nodeSelector"]}
    if sp["tolerations"]:
        extra = [{k: v for k, v in t.items() if v not in ("", None)} for t in sp["tolerations"]]
        traits["tolerations"] = _as_list(_get(current, "tolerations", [])) + extra
    eph = sp["ephemeralStorage"]
    if eph["limit"]:
        traits["extra_resource_limits"] = {**dict(_get(current, "extra_resource_limits", {})),
                                           "ephemeral-storage": eph["limit"]}
    if eph["request"]:
        traits["extra_resource_guarantees"] = {**dict(_get(current, "extra_resource_guarantees", {})),
                                               "ephemeral-storage": eph["request"]}
    return traits


def portal_service(portal: dict, env) -> tuple[dict, dict] | None:
    """(service, role) that let users sign in to the portal through the hub, or None when not asked for.

    The service is an OAuth client (`oauth_client_id`, its `api_token` as the client secret, from the hub's
    Secret through the environment); users get the `access:services!service=<name>` scope by the `user`
    role, and skip the confirmation page (`oauth_no_confirm`)."""
    svc = portal["service"]
    if not (portal["enabled"] and svc["oauthRedirectUri"]):
        return None
    token = env.get(svc["tokenEnv"], "")
    if not token:
        raise ConfigError(f"custom.jhub.portal.service.tokenEnv: environment variable {svc['tokenEnv']} is empty; "
                          "the chart must set it from the hub's Secret (hub.extraEnv)")
    service = {"name": svc["name"], "oauth_client_id": svc["oauthClientId"], "api_token": token,
               "oauth_redirect_uri": svc["oauthRedirectUri"], "oauth_no_confirm": True}
    return service, {"name": "user", "scopes": ["self", f"access:services!service={svc['name']}"]}


def _with_role(roles, role: dict) -> list:
    """Add `role`; a role of that name already configured (hub.loadRoles) keeps its own members and scopes."""
    roles = [dict(r) for r in roles or []]
    same = next((r for r in roles if r.get("name") == role["name"]), None)
    if same is None:
        return roles + [role]
    same["scopes"] = list(dict.fromkeys(list(same.get("scopes") or ["self"]) + role["scopes"]))
    return roles


def _without_allowall(tornado_settings: dict) -> dict:
    settings = dict(tornado_settings)
    headers = {k: v for k, v in dict(settings.get("headers") or {}).items()
               if not (k.lower() == "x-frame-options" and str(v).strip().upper() == "ALLOWALL")}
    if "headers" in settings:
        settings["headers"] = headers
    return settings


def configure(c, cfg, *, env=None, list_cluster=None) -> dict:
    """Validate `cfg`, then set everything on `c`. Returns the cleaned config (handy for logs and tests).

    `list_cluster(spawner)` -> (nodes, pods); by default a ClusterSource that watches or lists (profiles.watch).
    The profile list callable carries it as `.cluster_source` (tests stop its reflectors)."""
    env = os.environ if env is None else env
    cleaned = validate(cfg)
    auth_class, auth_traits = authenticator_config(cleaned["auth"], env)
    if cleaned["portal"]["enabled"] and not env.get(cleaned["portal"]["tokenEnv"]):
        raise ConfigError(f"custom.jhub.portal.tokenEnv: environment variable {cleaned['portal']['tokenEnv']} is "
                          "empty; the chart must set it from the portal token Secret (hub.extraEnv)")
    login_service = ""
    for section in ("GitHubOAuthenticator", "AzureAdOAuthenticator", "GenericOAuthenticator"):
        login_service = auth_traits.get(section, {}).get("login_service", login_service)
    branding = hub_traits(cleaned["branding"], login_service)  # reads the files: may raise, so before any change
    portal_oauth = portal_service(cleaned["portal"], env)

    ks = c.KubeSpawner
    list_cluster = list_cluster or ClusterSource(watch=cleaned["profiles"]["watch"])
    cache = RequestCache()
    profile_list = make_profile_list(cleaned["profiles"], list_cluster, cache=cache)
    profile_list.cluster_source = list_cluster
    pre_spawn, modify_pod = make_hooks(
        cleaned, list_cluster, profile_list,
        previous_pre_spawn=_get(ks, "pre_spawn_hook", None) or _get(c.Spawner, "pre_spawn_hook", None),
        previous_modify_pod=_get(ks, "modify_pod_hook", None),
        cache=cache,
    )
    if cleaned["mpi"]["enabled"]:  # the user's MPI namespace, once the spawn check accepted the server
        modify_pod = mpi_modify_pod_hook(cleaned, modify_pod)
    new_spawner = spawner_traits(cleaned, ks)

    # -- nothing above changed c; apply everything now --
    c.JupyterHub.authenticator_class = auth_class
    for cls, traits in auth_traits.items():
        for name, value in traits.items():
            setattr(c[cls], name, value)
    ks.profile_list = profile_list
    ks.pre_spawn_hook = pre_spawn
    ks.modify_pod_hook = modify_pod
    for name, value in new_spawner.items():
        setattr(ks, name, value)
    named = cleaned["spawner"]["namedServers"]
    c.JupyterHub.allow_named_servers = named["enabled"]
    c.JupyterHub.named_server_limit_per_user = named["limit"]
    template_vars = {**dict(_get(c.JupyterHub, "template_vars", {})), **branding.pop("template_vars")}
    if cleaned["portal"]["enabled"] and cleaned["portal"]["notices"]["enabled"]:
        template_vars["jhub_notices"] = NoticeCache(cleaned["portal"]).template_var  # the banner in page.html
    c.JupyterHub.template_vars = template_vars
    c.JupyterHub.template_paths = branding.pop("template_paths") + list(_get(c.JupyterHub, "template_paths", []))
    for name, value in branding.items():
        setattr(c.JupyterHub, name, value)
    c.JupyterHub.tornado_settings = _without_allowall(_get(c.JupyterHub, "tornado_settings", {}))
    if portal_oauth:
        service, role = portal_oauth
        c.JupyterHub.services = list(_get(c.JupyterHub, "services", [])) + [service]
        roles = _with_role(_get(c.JupyterHub, "load_roles", []), role)
        # the portal re-reads its signed-in users' names and admin flags (ended sessions, demoted admins); with
        # idle-GPU reclaim it also stops servers flagged idle GPU (DELETE /users/<name>/server[s/<name>])
        scopes = ["read:users:name"] + (["servers"] if cleaned["portal"]["service"]["stopServers"] else [])
        c.JupyterHub.load_roles = _with_role(roles, {"name": "portal-service", "services": [service["name"]],
                                                     "scopes": scopes})
    return cleaned
