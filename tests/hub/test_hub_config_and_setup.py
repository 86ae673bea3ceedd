"""custom.jhub validation errors name the key; configure() applies safe spawner settings, all or nothing."""

import pytest
from traitlets.config import Config

import jhub_setup
from hubtest_cluster import L40S, node
from hubtest_configs import configured, jhub_cfg, new_spawner, spawn_until_pod
from jhub_config import ConfigError, validate
from jhub_profiles import CPU_SLUG, gpu_profile_slug


@pytest.mark.parametrize("cfg,message", [
    (None, "custom.jhub: missing"),
    ({"profiles": {"images": [{"name": "py", "image": "a:b"}]}}, "custom.jhub.auth.mode: required"),
    (jhub_cfg(auth={"mode": "pam"}), "custom.jhub.auth.mode: must be one of native, github"),
    (jhub_cfg(auth={"mode": "github", "allowAll": True, "github": {"clientId": "x"}}),
     "custom.jhub.auth.github.callbackUrl: required"),
    (jhub_cfg(auth={"mode": "github", "github": {"clientId": "x", "callbackUrl": "https://h/hub/oauth_callback"}}),
     "custom.jhub.auth: mode github lets nobody in"),
    (jhub_cfg(auth={"mode": "native", "github": {}}), "custom.jhub.auth.github: unknown key"),
    (jhub_cfg(auth={"mode": "cookie-sso", "cookieSso": {"cookieName": "s", "authMeUrl": "/api/me",
                                                         "loginUrl": "https://sso/login"}}),
     "custom.jhub.auth.cookieSso.authMeUrl: must be an absolute http(s) URL"),
    (jhub_cfg(auth={"mode": "ldap", "allowAll": True, "ldap": {"serverAddress": "ldap"}}),
     "custom.jhub.auth.ldap: set bindDnTemplates, or lookupDn: true with searchBase"),
    (jhub_cfg(auth={"mode": "azuread", "allowAll": True, "azuread": {}}), "custom.jhub.auth.allowAll: not used"),
    (jhub_cfg(auth={"mode": "native", "allowedUsers": ["admin2"]}), "custom.jhub.auth.allowedUsers: not used"),
    (jhub_cfg(profiles={"images": []}), "custom.jhub.profiles.images: needs at least 1 item"),
    (jhub_cfg(profiles={"images": [{"name": "py", "image": "a"}, {"name": "py", "image": "b"}]}),
     "custom.jhub.profiles.images: image name 'py' is used twice"),
    (jhub_cfg(profiles={"images": [{"name": "py", "image": "a"}], "cpuPresets": [{"cpu": 2}]}),
     "custom.jhub.profiles.cpuPresets[0].memoryGiB: required"),
    (jhub_cfg(profiles={"images": [{"name": "py", "image": "a"}], "reserve": {"cpu": "1"}}),
     "custom.jhub.profiles.reserve.cpu: must be a number"),
    (jhub_cfg(profiles={"images": [{"name": "py", "image": "a"}], "rdmaResource": "rdma shared"}),
     "custom.jhub.profiles.rdmaResource: 'rdma shared' is not valid"),
    (jhub_cfg(profiles={"images": [{"name": "py", "image": "a"}], "sharedGpuResource": "gpu.shared"}),
     "custom.jhub.profiles.sharedGpuResource: 'gpu.shared' is not valid"),
    (jhub_cfg(profiles={"images": [{"name": "py", "image": "a"}], "migResourcePrefix": "mig-"}),
     "custom.jhub.profiles.migResourcePrefix: 'mig-' is not valid"),
    (jhub_cfg(profiles={"images": [{"name": "py", "image": "a"}], "watch": "yes"}),
     "custom.jhub.profiles.watch: must be true or false"),
    (jhub_cfg(spawner={"ephemeralStorage": {"limit": "lots"}}),
     "custom.jhub.spawner.ephemeralStorage.limit: 'lots' is not a Kubernetes quantity"),
    (jhub_cfg(spawner={"grantSudo": True}), "custom.jhub.spawner.grantSudo: needs allowPrivilegeEscalation"),
    (jhub_cfg(spawner={"tolerations": [{"effect": "Sometimes"}]}),
     "custom.jhub.spawner.tolerations[0].effect: must be one of"),
    (jhub_cfg(portal={"enabled": True}), "custom.jhub.portal.url: required when portal.enabled"),
    (jhub_cfg(branding={"logo": "x.png"}), "custom.jhub.branding.logo: unknown key"),
])
def test_validation_errors_name_the_key(cfg, message):
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert message in str(err.value)


def test_gpu_sharing_keys_default_to_what_the_operators_advertise():
    profiles = validate({"auth": {"mode": "native"}, "profiles": {"images": [{"name": "py", "image": "a:b"}]}})[
        "profiles"]
    assert {k: profiles[k] for k in ("sharedGpuResource", "migResourcePrefix", "rdmaResource", "watch")} == {
        "sharedGpuResource": "nvidia.com/gpu.shared", "migResourcePrefix": "nvidia.com/mig-",
        "rdmaResource": "rdma/rdma_shared_device_a", "watch": False}
    assert validate(jhub_cfg(profiles={"images": [{"name": "py", "image": "a"}], "rdmaResource": ""}))[
        "profiles"]["rdmaResource"] == ""


def test_all_errors_are_reported_at_once():
    with pytest.raises(ConfigError) as err:
        validate(jhub_cfg(auth={"mode": "native", "adminUsers": "admin"}, portal={"enabled": True, "failOpen": "yes"}))
    text = str(err.value)
    assert "custom.jhub.auth.adminUsers: must be a list" in text
    assert "custom.jhub.portal.failOpen: must be true or false" in text
    assert "custom.jhub.portal.url: required" in text


def test_a_bad_config_changes_nothing(tmp_path):
    c = Config()
    with pytest.raises(ConfigError, match="custom.jhub.branding.logoFile: cannot read"):
        jhub_setup.configure(c, jhub_cfg(branding={"logoFile": str(tmp_path / "missing.png")}), env={})
    with pytest.raises(ConfigError, match="environment variable OAUTH_CLIENT_SECRET is empty"):
        jhub_setup.configure(c, jhub_cfg(auth={"mode": "azuread", "azuread": {
            "clientId": "x", "callbackUrl": "https://h/hub/oauth_callback", "tenantId": "t"}}), env={})
    assert c == Config()


def test_defaults_are_filled_and_stable():
    first = validate(jhub_cfg())
    assert first["portal"] == {"enabled": False, "url": "", "tokenEnv": "JHUB_PORTAL_TOKEN", "failOpen": False,
                               "timeoutSeconds": 5, "verifyTls": True, "caFile": "", "service": {
                                   "name": "portal", "oauthClientId": "service-portal", "oauthRedirectUri": "",
                                   "tokenEnv": "JHUB_PORTAL_SERVICE_TOKEN", "stopServers": False},
                               "notices": {"enabled": True, "refreshSeconds": 60, "timeoutSeconds": 2}}
    assert first["spawner"]["allowPrivilegeEscalation"] is False and first["spawner"]["grantSudo"] is False
    assert validate(jhub_cfg()) == first


def chart_like(c):
    """Bits the chart's own jupyterhub_config.py sets before ours runs."""
    c.KubeSpawner.environment = {"GRANT_SUDO": "yes", "TZ": "Asia/Taipei"}
    c.KubeSpawner.tolerations = [{"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user",
                                  "effect": "NoSchedule"}]
    c.KubeSpawner.volumes = [{"name": "shm", "emptyDir": {"medium": "Memory"}}]
    c.KubeSpawner.volume_mounts = [{"name": "shm", "mountPath": "/dev/shm"}]
    c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0, "headers": {"X-Frame-Options": "ALLOWALL"}}


@pytest.mark.asyncio
async def test_user_pods_have_no_privilege_escalation_or_sudo_by_default(kube_api):
    kube_api.cluster["nodes"] = [node("cpu-1", cpu="16", memory="64Gi")]
    c = configured(jhub_cfg(), kube_api.url, prepare=chart_like)
    got = await spawn_until_pod(new_spawner(c, "alice"), {"profile": CPU_SLUG})
    main = got["spec"]["containers"][0]
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["privileged"] is False
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert "GRANT_SUDO" not in env and env["TZ"] == "Asia/Taipei"
    assert c.JupyterHub.tornado_settings == {"slow_spawn_timeout": 0, "headers": {}}


@pytest.mark.asyncio
async def test_sudo_only_when_config_asks(kube_api):
    kube_api.cluster["nodes"] = [node("cpu-1", cpu="16", memory="64Gi")]
    cfg = jhub_cfg(spawner={"allowPrivilegeEscalation": True, "grantSudo": True})
    got = await spawn_until_pod(new_spawner(configured(cfg, kube_api.url), "alice"), {"profile": CPU_SLUG})
    main = got["spec"]["containers"][0]
    assert main["securityContext"]["allowPrivilegeEscalation"] is True
    assert {e["name"]: e.get("value") for e in main["env"]}["GRANT_SUDO"] == "yes"
    assert main["securityContext"]["runAsUser"] == 0  # the entrypoint grants sudo as root, then drops


@pytest.mark.asyncio
async def test_read_only_root_ephemeral_storage_selectors_tolerations_and_named_servers(kube_api):
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    kube_api.cluster["nodes"] = [node("g1", cpu="64", memory="256Gi", gpus=4, model=L40S, taints=[taint],
                                      labels={"pool": "lab"}),
                                 node("other", cpu="64", memory="256Gi", gpus=4, model=L40S)]
    cfg = jhub_cfg(spawner={
        "readOnlyRootFilesystem": True, "ephemeralStorage": {"request": "1Gi", "limit": "20Gi"},
        "nodeSelector": {"pool": "lab"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
        "namedServers": {"enabled": True, "limit": 3}})
    c = configured(cfg, kube_api.url, prepare=chart_like)
    assert c.JupyterHub.allow_named_servers is True and c.JupyterHub.named_server_limit_per_user == 3
    got = await spawn_until_pod(new_spawner(c, "alice", "exp"),
                                {"profile": gpu_profile_slug(L40S), "gpus": "1", "node": "g1"})
    main = got["spec"]["containers"][0]
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "jhub-tmp", "mountPath": "/tmp"} in main["volumeMounts"]
    assert {"name": "shm", "mountPath": "/dev/shm"} in main["volumeMounts"]
    assert main["resources"]["limits"]["ephemeral-storage"] == "20Gi"
    assert main["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert main["resources"]["requests"]["ephemeral-storage"] == "1Gi"
    assert got["spec"]["nodeSelector"]["pool"] == "lab"
    keys = [t["key"] for t in got["spec"]["tolerations"]]
    assert "hub.jupyter.org/dedicated" in keys and "dedicated" in keys


PORTAL = {"enabled": True, "url": "http://portal.jhub.svc:8000", "service": {
    "oauthRedirectUri": "http://hub.lab:29781/oauth_callback"}}
PORTAL_ENV = {"JHUB_PORTAL_TOKEN": "limits-token-0123456789", "JHUB_PORTAL_SERVICE_TOKEN": "service-token-abcdef012345"}


def test_portal_is_registered_as_a_service_next_to_the_charts_own():
    c = Config()
    c.JupyterHub.services = [{"name": "jupyterhub-idle-culler", "command": ["python3", "-m", "jupyterhub_idle_culler"]}]
    c.JupyterHub.load_roles = [{"name": "jupyterhub-idle-culler", "scopes": ["list:users"]},
                               {"name": "user", "scopes": ["self", "read:users:name"], "users": ["x"]}]
    jhub_setup.configure(c, jhub_cfg(portal=PORTAL), env=PORTAL_ENV)
    assert [s["name"] for s in c.JupyterHub.services] == ["jupyterhub-idle-culler", "portal"]
    assert c.JupyterHub.services[1] == {"name": "portal", "oauth_client_id": "service-portal",
                                        "api_token": "service-token-abcdef012345",
                                        "oauth_redirect_uri": "http://hub.lab:29781/oauth_callback",
                                        "oauth_no_confirm": True}
    user = next(r for r in c.JupyterHub.load_roles if r["name"] == "user")
    assert user == {"name": "user", "scopes": ["self", "read:users:name", "access:services!service=portal"],
                    "users": ["x"]}, "a user role configured before keeps what it had"
    plain = Config()
    jhub_setup.configure(plain, jhub_cfg(portal=PORTAL), env=PORTAL_ENV)
    assert plain.JupyterHub.load_roles == [
        {"name": "user", "scopes": ["self", "access:services!service=portal"]},
        # the portal re-reads its users' names and admin flags: nothing more
        {"name": "portal-service", "services": ["portal"], "scopes": ["read:users:name"]}]


def test_portal_service_without_its_token_changes_nothing():
    c = Config()
    with pytest.raises(ConfigError, match="custom.jhub.portal.service.tokenEnv: environment variable "
                                          "JHUB_PORTAL_SERVICE_TOKEN is empty"):
        jhub_setup.configure(c, jhub_cfg(portal=PORTAL), env={"JHUB_PORTAL_TOKEN": "limits-token-0123456789"})
    assert c == Config()
