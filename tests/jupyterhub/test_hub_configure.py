"""The values, handed to the real hub code: `custom.jhub` goes through hub/jhub_setup.configure() with the
real jupyterhub and kubespawner packages (requirements/hub.txt), on top of what the chart itself sets from
our values, and KubeSpawner expands our storage templates to the same escaped name as the pod name."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from tests.jupyterhub.hubconfigs import (AUTH, STORAGE, THREE_NODES, all_configs, config, hub_dir, hub_env, settings_of,
                                        values_of)
from tests.support.kubeconfig import pointed_at as kubeconfig_pointed_at

pytest.importorskip("jupyterhub", reason="the hub packages of requirements/hub.txt are not installed")
kubespawner = pytest.importorskip("kubespawner", reason="the hub packages of requirements/hub.txt are not installed")

CLASSES = {"native": "jhub_native.JhubNativeAuthenticator",
           "github": "oauthenticator.github.GitHubOAuthenticator",
           "azuread": "jhub_azuread.JhubAzureAdOAuthenticator",
           "oidc": "oauthenticator.generic.GenericOAuthenticator",
           "ldap": "ldapauthenticator.LDAPAuthenticator",
           "cookie-sso": "jhub_cookie_sso.CookieSSOAuthenticator"}


@pytest.fixture(scope="module", autouse=True)
def kubeconfig(tmp_path_factory):
    """A KubeSpawner loads a kubeconfig when it is made; no API server is contacted (it runs with _mock).
    tests/support/kubeconfig.py says why the client's frozen default is pointed at it too."""
    text = ("apiVersion: v1\nkind: Config\ncurrent-context: t\n"
            "clusters: [{name: t, cluster: {server: 'http://127.0.0.1:9'}}]\n"
            "users: [{name: t, user: {token: t}}]\ncontexts: [{name: t, context: {cluster: t, user: t}}]\n")
    with kubeconfig_pointed_at(tmp_path_factory.mktemp("jhub-values") / "kubeconfig", text) as path:
        yield path


@pytest.fixture(scope="module", autouse=True)
def hub_modules():
    if not (hub_dir() / "jhub_setup.py").is_file():
        pytest.skip("hub/jhub_setup.py is absent (the hub-side Python has not landed in this checkout)")
    sys.path.insert(0, str(hub_dir()))
    yield
    sys.path.remove(str(hub_dir()))


def chart_config(values: dict):
    """What the chart's own jupyterhub_config.py sets from our values before extraConfig runs."""
    from traitlets.config import Config

    su = values["singleuser"]
    c = Config()
    c.KubeSpawner.volumes = dict(su["storage"]["extraVolumes"])
    c.KubeSpawner.volume_mounts = dict(su["storage"]["extraVolumeMounts"])
    c.KubeSpawner.init_containers = list(su["initContainers"])
    c.KubeSpawner.pod_name_template = su["podNameTemplate"]
    c.KubeSpawner.allow_privilege_escalation = su["allowPrivilegeEscalation"]
    return c


async def no_cluster(spawner):
    return [], []


def configure(name_or_config):
    import jhub_setup

    cfg = all_configs()[name_or_config] if isinstance(name_or_config, str) else name_or_config
    settings = settings_of(cfg)
    values = values_of(settings)
    c = chart_config(values)
    env = hub_env(settings)
    jhub_setup.configure(c, values["custom"]["jhub"], env=env, list_cluster=no_cluster)
    return c, values


@pytest.mark.parametrize("mode", sorted(AUTH))
def test_each_auth_mode_configures_its_authenticator(mode):
    c, _ = configure(f"{mode}-nfs")
    assert c.JupyterHub.authenticator_class == CLASSES[mode]
    assert c.Authenticator.admin_users == {"admin"}
    assert not c.Authenticator.get("allow_all", False), "no stray allow_all"


def test_everything_config_keeps_the_charts_volumes_and_adds_its_own():
    c, values = configure("tls-portal-everything")
    volumes = c.KubeSpawner.volumes
    names = set(volumes) if isinstance(volumes, dict) else {v["name"] for v in volumes}
    assert {"jhub-user-storage", "jhub-shared-storage", "jhub-dev-shm"} <= names
    assert c.KubeSpawner.container_security_context["readOnlyRootFilesystem"] is True
    assert c.JupyterHub.allow_named_servers is True and c.JupyterHub.named_server_limit_per_user == 2
    headers = (c.JupyterHub.get("tornado_settings") or {}).get("headers", {})
    assert all(str(v).upper() != "ALLOWALL" for v in headers.values())


def test_storage_directory_and_pod_name_use_the_same_escaped_username():
    import asyncio

    from kubespawner import KubeSpawner

    c, values = configure(config(nodes=THREE_NODES, auth=AUTH["native"], hub={"storage": STORAGE["shared-hostpath"]}))

    async def expand():  # KubeSpawner wants a running event loop
        user = SimpleNamespace(name="Alice.Smith", id=7, url="/user/Alice.Smith/", escaped_name="Alice.Smith")
        orm = SimpleNamespace(name="", server=None, state=None, user_options=None)
        spawner = KubeSpawner(config=c, user=user, orm_spawner=orm, _mock=True)
        return (spawner.pod_name, spawner._expand_all(dict(c.KubeSpawner.volume_mounts)),
                spawner._expand_all(list(c.KubeSpawner.init_containers)))

    pod_name, mounts, inits = asyncio.run(expand())
    sub_path = mounts["jhub-user-storage"]["subPath"]
    assert pod_name == f"jupyter-{sub_path}"
    assert sub_path != "Alice.Smith" and sub_path == sub_path.lower()
    assert f'dir="/jhub-storage-root/{sub_path}"' in inits[0]["command"][2]


def internal_ca_pem() -> str:
    sys.path.insert(0, str(hub_dir().parent / "tests" / "hub"))
    try:
        from hubtest_tls import TestCA
    finally:
        sys.path.pop(0)
    return TestCA("lab internal CA").pem


CA_TRAIT = {  # where each mode's authenticator takes the CA file
    "github": ("GitHubOAuthenticator", lambda t: t["http_request_kwargs"]["ca_certs"]),
    "azuread": ("AzureAdOAuthenticator", lambda t: t["http_request_kwargs"]["ca_certs"]),
    "oidc": ("GenericOAuthenticator", lambda t: t["http_request_kwargs"]["ca_certs"]),
    "ldap": ("LDAPAuthenticator", lambda t: t["tls_kwargs"]["ca_certs_file"]),
    "cookie-sso": ("CookieSSOAuthenticator", lambda t: t["ca_certs"]),
}


@pytest.mark.parametrize("mode", sorted(AUTH))
def test_internal_ca_reaches_every_tls_client_of_the_hub(mode):
    import jhub_setup
    from components.jupyterhub.chart import HUB_CA_FILE

    pem = internal_ca_pem()
    settings = settings_of(config(auth={**AUTH[mode], "caCertificate": pem}, portal={"enabled": True}))
    values = values_of(settings)
    mounted = [f for f in values["hub"]["extraFiles"].values() if f["mountPath"] == HUB_CA_FILE]
    assert [f["stringData"] for f in mounted] == [pem], "the CA is mounted into the hub pod"
    c = chart_config(values)
    env = hub_env(settings)
    cleaned = jhub_setup.configure(c, values["custom"]["jhub"], env=env, list_cluster=no_cluster)
    assert cleaned["portal"]["caFile"] == HUB_CA_FILE, "the pre-spawn limit hook checks the portal with it"
    if mode in CA_TRAIT:
        section, where = CA_TRAIT[mode]
        assert where(c[section]) == HUB_CA_FILE
    plain = values_of(settings_of(config(auth=AUTH[mode], portal={"enabled": True})))
    assert not any(f["mountPath"] == HUB_CA_FILE for f in plain["hub"]["extraFiles"].values())
    assert "caFile" not in plain["custom"]["jhub"]["portal"]


def test_oidc_verify_tls_uses_the_current_trait():
    c, _ = configure(config(auth={**AUTH["oidc"], "oidc": {**AUTH["oidc"]["oidc"], "verifyTls": False}}))
    assert c.GenericOAuthenticator.validate_server_cert is False
    assert "tls_verify" not in c.GenericOAuthenticator, "deprecated in OAuthenticator 16"


def spawner_for(values_config, username="Alice.Smith"):
    import asyncio

    from kubespawner import KubeSpawner

    c, values = configure(values_config)

    async def make():  # KubeSpawner wants a running event loop
        user = SimpleNamespace(name=username, id=7, url=f"/user/{username}/", escaped_name=username)
        orm = SimpleNamespace(name="", server=None, state=None, user_options=None)
        spawner = KubeSpawner(config=c, user=user, orm_spawner=orm, _mock=True)
        return spawner, spawner.get_env(), spawner._expand_all(dict(c.KubeSpawner.volume_mounts))

    return asyncio.run(make())


@pytest.mark.parametrize("kind", ["shared-hostpath", "local"])
def test_jupyterlab_opens_the_persistent_storage_inside_home(kind):
    """The default: storage is a new folder in the home directory; the server starts in home (what the image
    installed there stays in view) and opens the storage folder, where saved files persist."""
    storage = STORAGE[kind]
    nodes = THREE_NODES if kind != "local" else None
    spawner, env, mounts = spawner_for(config(nodes=nodes, auth=AUTH["native"], hub={"storage": storage}))
    assert env["JUPYTERHUB_ROOT_DIR"] == "/home/jovyan"
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab/tree/storage"
    if kind == "shared-hostpath":
        assert mounts["jhub-user-storage"]["mountPath"] == "/home/jovyan/storage"
        assert mounts["jhub-user-storage"]["subPath"] == spawner.pod_name.removeprefix("jupyter-")
    assert not any(m["mountPath"] in ("/home/jovyan", "/home") for m in mounts.values())


def test_storage_outside_home_keeps_the_images_defaults():
    _, env, mounts = spawner_for(config(nodes=THREE_NODES, auth=AUTH["native"], hub={"storage": {
        **STORAGE["nfs"], "mountPath": "/workspace/storage"}}))
    assert "JUPYTERHUB_ROOT_DIR" not in env and "JUPYTERHUB_DEFAULT_URL" not in env
    assert mounts["jhub-user-storage"]["mountPath"] == "/workspace/storage"


def test_a_custom_home_moves_the_default_storage_folder():
    _, env, mounts = spawner_for(config(nodes=THREE_NODES, auth=AUTH["native"], hub={
        "homeDir": "/home/rstudio", "storage": {**STORAGE["nfs"], "mountPath": "/home/rstudio/My Files"}}))
    assert env["JUPYTERHUB_ROOT_DIR"] == "/home/rstudio"
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab/tree/My%20Files"
    assert mounts["jhub-user-storage"]["mountPath"] == "/home/rstudio/My Files"


@pytest.mark.parametrize("presets,expected", [([], 0), (None, None)])
def test_cpu_presets_empty_means_no_cpu_only_servers(presets, expected):
    hub = {"images": [{"name": "py", "image": "quay.io/jupyterhub/k8s-singleuser-sample:4.4.0"}]}
    if presets is not None:
        hub["profiles"] = {"cpuPresets": presets}
    c, values = configure(config(hub=hub))
    sent = values["custom"]["jhub"]["profiles"].get("cpuPresets")
    if expected is None:
        assert sent is None or len(sent) > 0, "without the key the hub's own presets apply"
    else:
        assert sent == [], "an empty list reaches the hub as an empty list"
