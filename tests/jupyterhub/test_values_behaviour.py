"""What the values make the hub do, as a user or an admin would notice it."""

from __future__ import annotations

import json

from components.jupyterhub.hub_files import ENTRY_POINT
from tests.jupyterhub.hubconfigs import AUTH, ONE_NODE, STORAGE, THREE_NODES, all_configs, config, settings_of, values_of
from tests.support.secrets_for_tests import ALL as SECRET_VALUES


def strings_in(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(strings_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(strings_in(v) for v in value)) if value else set()
    return {value.lower()} if isinstance(value, str) else set()


def values(**kw) -> dict:
    return values_of(settings_of(config(**kw)))


def test_defaults_nodeport_admins_culler_shm_and_image():
    v = values()
    assert v["proxy"]["service"] == {"nodePorts": {"http": 30080}, "type": "NodePort"}
    assert v["custom"]["jhub"]["auth"]["adminUsers"] == ["admin"]
    assert v["cull"] == {"enabled": True, "every": 600, "timeout": 7 * 24 * 3600, "users": False}
    shm = v["singleuser"]["storage"]["extraVolumes"]["jhub-dev-shm"]
    assert shm["emptyDir"]["medium"] == "Memory"
    assert v["singleuser"]["storage"]["extraVolumeMounts"]["jhub-dev-shm"]["mountPath"] == "/dev/shm"
    assert v["singleuser"]["image"] == {"name": "quay.io/jupyterhub/k8s-singleuser-sample", "tag": "4.4.0"}


def test_configured_port_timeout_and_images():
    v = values(hub={"nodePort": 31000, "idleTimeout": "2h", "shmSize": "8Gi", "images": [
        {"name": "a", "image": "reg.lab:5000/ml/a:1"}, {"name": "b", "image": "reg.lab:5000/ml/b:2", "default": True}]})
    assert v["proxy"]["service"]["nodePorts"]["http"] == 31000
    assert v["cull"]["timeout"] == 7200
    assert v["singleuser"]["storage"]["extraVolumes"]["jhub-dev-shm"]["emptyDir"]["sizeLimit"] == "8Gi"
    assert v["singleuser"]["image"] == {"name": "reg.lab:5000/ml/b", "tag": "2"}
    images = v["custom"]["jhub"]["profiles"]["images"]
    assert [(i["name"], i["default"]) for i in images] == [("a", False), ("b", True)]


def test_idle_culler_can_be_turned_off():
    assert values(hub={"idleTimeout": "off"})["cull"] == {"enabled": False}


def test_hub_code_is_mounted_and_called_with_custom_jhub():
    v = values()
    files = v["hub"]["extraFiles"]
    paths = {f["mountPath"] for f in files.values()}
    assert "/usr/local/etc/jupyterhub/jhub/jhub_setup.py" in paths
    assert any(p.startswith("/usr/local/etc/jupyterhub/jhub/templates/") for p in paths)
    assert v["hub"]["extraConfig"]["jhub"] == ENTRY_POINT
    assert 'jhub_setup.configure(c, get_config("custom.jhub"))' in ENTRY_POINT
    assert v["hub"]["config"]["JupyterHub"]["authenticator_class"] == "null", "never the dummy authenticator"
    assert "admin_access" not in v["hub"]["config"]["JupyterHub"], "deprecated: the admin role grants it"


def test_safe_by_default_no_escalation_no_sudo_no_allowall_frames():
    for name, cfg in all_configs().items():
        v = values_of(settings_of(cfg))
        code = v["hub"].pop("extraFiles")  # hub/jhub_setup.py names ALLOWALL to strip it; the rest must not
        assert "allowall" not in strings_in(v), name  # the key "allowAll" is fine, the header value is not
        assert "x-frame-options" not in json.dumps(v).lower(), name
        assert code
        if name != "tls-portal-everything":
            assert v["singleuser"]["allowPrivilegeEscalation"] is False
            assert v["custom"]["jhub"]["spawner"]["grantSudo"] is False
    assert values()["custom"]["jhub"]["auth"]["allowAll"] is False
    assert values()["singleuser"]["cloudMetadata"]["blockWithIptables"] is False  # no privileged init container


def test_sudo_only_when_asked():
    v = values(hub={"grantSudo": True, "allowPrivilegeEscalation": True})
    assert v["singleuser"]["allowPrivilegeEscalation"] is True
    assert v["custom"]["jhub"]["spawner"]["grantSudo"] is True


def test_allowed_organisations_restrict_github():
    auth = values(auth=AUTH["github"])["custom"]["jhub"]["auth"]
    assert auth["github"]["allowedOrganizations"] == ["lab-org"] and auth["allowAll"] is False
    assert auth["github"]["clientSecretEnv"] == "OAUTH_CLIENT_SECRET"
    assert auth["github"]["callbackUrl"] == "http://hub.lab:30080/hub/oauth_callback"


def test_secrets_reach_the_hub_only_by_reference():
    v = values(auth=AUTH["oidc"], portal={"enabled": True})
    text = json.dumps(v)
    assert not any(secret in text for secret in SECRET_VALUES)
    env = v["hub"]["extraEnv"]
    assert set(env) == {"JHUB_PORTAL_TOKEN", "JHUB_PORTAL_SERVICE_TOKEN", "OAUTH_CLIENT_SECRET"}
    assert env["JHUB_PORTAL_TOKEN"]["valueFrom"]["secretKeyRef"] == {"key": "JHUB_PORTAL_TOKEN",
                                                                    "name": "hub-secret-x"}
    portal = v["custom"]["jhub"]["portal"]
    assert portal == {"enabled": True, "failOpen": False, "timeoutSeconds": 5, "tokenEnv": "JHUB_PORTAL_TOKEN",
                      "url": "http://jhub-portal.jhub.svc:29781", "verifyTls": True,
                      "service": {"name": "portal", "oauthClientId": "service-portal",
                                  "oauthRedirectUri": "http://hub.lab:29781/oauth_callback",
                                  "tokenEnv": "JHUB_PORTAL_SERVICE_TOKEN", "stopServers": False}}
    assert "apiToken" not in json.dumps(v["hub"]), "the service token never enters the chart's hub.services"


def test_cookie_sso_builds_absolute_urls_from_the_hub_address():
    sso = values(auth=AUTH["cookie-sso"], tls={"enabled": True, "hostname": "hub.lab.example"})
    assert sso["custom"]["jhub"]["auth"]["cookieSso"]["hubPublicUrl"] == "https://hub.lab.example"
    assert sso["custom"]["jhub"]["auth"]["cookieSso"]["cookieName"] == "lab_session"


def test_shared_hostpath_dirs_use_the_pod_name_escaping_and_get_the_right_owner():
    v = values(nodes=THREE_NODES, hub={"storage": STORAGE["shared-hostpath"], "userUid": 1001, "userGid": 100})
    su = v["singleuser"]
    assert su["podNameTemplate"] == "jupyter-{user_server}"
    mount = su["storage"]["extraVolumeMounts"]["jhub-user-storage"]
    assert mount == {"mountPath": "/home/jovyan/storage", "name": "jhub-user-storage", "subPath": "{username}"}
    volume = su["storage"]["extraVolumes"]["jhub-user-storage"]
    assert volume["hostPath"] == {"path": "/kubeflow_cephfs/jhub_storage", "type": "Directory"}
    init = su["initContainers"][0]
    script = init["command"][2]
    assert '/jhub-storage-root/{username}' in script and "chown 1001:100" in script
    assert script.replace("{username}", "") .count("{") == 0, "only {username} may reach KubeSpawner's format"
    assert init["securityContext"]["allowPrivilegeEscalation"] is False
    assert su["storage"]["type"] == "none"


def test_nfs_and_local_storage():
    nfs = values(nodes=THREE_NODES, hub={"storage": STORAGE["nfs"]})["singleuser"]["storage"]
    assert nfs["extraVolumes"]["jhub-user-storage"]["nfs"] == {"path": "/exports/jhub", "server": "10.0.0.50"}
    local = values(nodes=ONE_NODE, hub={"storage": STORAGE["local"]})["singleuser"]
    assert local["storage"]["type"] == "dynamic" and local["storage"]["capacity"] == "20Gi"
    assert local["storage"]["homeMountPath"] == "/home/jovyan/storage", "a new folder, never over the home itself"
    assert local["storage"]["dynamic"]["pvcNameTemplate"] == "claim-{username}"
    assert local["initContainers"] == []


def test_shared_storage_read_only():
    v = values(hub={"sharedStorage": {"enabled": True, "type": "nfs", "server": "nfs.lab", "path": "/data",
                                      "readOnly": True}})
    storage = v["singleuser"]["storage"]
    assert storage["extraVolumeMounts"]["jhub-shared-storage"] == {
        "mountPath": "/workspace/shared", "name": "jhub-shared-storage", "readOnly": True}
    assert storage["extraVolumes"]["jhub-shared-storage"]["nfs"]["readOnly"] is True


def test_gpu_packing_scheduler_and_spawn_options():
    v = values_of(settings_of(all_configs()["tls-portal-everything"]))
    scheduler = v["scheduling"]["userScheduler"]
    assert scheduler["enabled"] is True
    strategy = scheduler["pluginConfig"][0]["args"]["scoringStrategy"]
    assert strategy["type"] == "MostAllocated"
    assert {"name": "nvidia.com/gpu", "weight": 20} in strategy["resources"]
    assert v["custom"]["jhub"]["spawner"]["namedServers"] == {"enabled": True, "limit": 2}
    assert "allowNamedServers" not in v["hub"], "jhub_setup.configure owns named servers (hub/README.md)"
    spawner = v["custom"]["jhub"]["spawner"]
    assert spawner["nodeSelector"] == {"jhub.io/pool": "a100"}
    assert spawner["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists",
                                       "value": ""}]
    assert spawner["readOnlyRootFilesystem"] is True
    assert spawner["ephemeralStorage"] == {"limit": "50Gi", "request": "1Gi"}
    assert v["prePuller"]["continuous"]["enabled"] is True and v["prePuller"]["hook"]["enabled"] is False
    assert v["prePuller"]["extraImages"] == {"jhub-minimal": {"name": "quay.io/jupyterhub/k8s-singleuser-sample",
                                                              "tag": "4.4.0"}}
    assert values()["scheduling"]["userScheduler"] == {"enabled": False}


def test_https_ingress_and_plain_nodeport_together():
    v = values(tls={"enabled": True, "hostname": "hub.lab.example"})
    ingress = v["ingress"]
    assert ingress["enabled"] is True and ingress["ingressClassName"] == "public"
    assert ingress["tls"] == [{"hosts": ["hub.lab.example"], "secretName": "tls-secret-x"}]
    assert ingress["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
    assert v["proxy"]["service"]["type"] == "NodePort", "the plain NodePort stays available"
    assert "https" not in v["proxy"], "no ACME, no certificate download"


def test_core_pods_stay_on_the_control_plane():
    v = values(nodes=THREE_NODES, hub={"storage": STORAGE["nfs"]})
    assert v["hub"]["nodeSelector"] == {"kubernetes.io/hostname": "gpu01"}
    assert v["proxy"]["chp"]["nodeSelector"] == {"kubernetes.io/hostname": "gpu01"}


def test_branding_files_are_mounted_from_config_maps_never_from_the_values(tmp_path):
    import base64

    from components.jupyterhub import manifests
    from components.jupyterhub.hub_files import read_branding
    from tests.support.program import ROOT

    logo, icon = tmp_path / "Lab Logo.PNG", tmp_path / "fav.ico"
    logo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    icon.write_bytes(b"\x00\x00\x01\x00icon")
    settings = settings_of(config(hub={"branding": {
        "title": "Lab Hub", "logo": str(logo), "favicon": str(icon), "announcement": "Maintenance Monday",
        "signInText": "Sign in with SSO"}}))
    v = values_of(settings)
    (volume,) = v["hub"]["extraVolumes"]
    (mount,) = v["hub"]["extraVolumeMounts"]
    assert mount == {"mountPath": "/usr/local/etc/jupyterhub/jhub-branding", "name": volume["name"], "readOnly": True}
    assert volume["projected"]["sources"] == [
        {"configMap": {"items": [{"key": "logo.png", "path": "logo.png"}], "name": "branding-logo-x"}},
        {"configMap": {"items": [{"key": "favicon.ico", "path": "favicon.ico"}], "name": "branding-favicon-x"}}]
    branding = v["custom"]["jhub"]["branding"]
    assert branding == {"announcement": "Maintenance Monday",
                        "faviconFile": "/usr/local/etc/jupyterhub/jhub-branding/favicon.ico",
                        "logoFile": "/usr/local/etc/jupyterhub/jhub-branding/logo.png", "signInText": "Sign in with SSO",
                        "loginAnnouncement": "", "title": "Lab Hub"}
    text = json.dumps(v)
    assert str(tmp_path) not in text, "paths on the admin machine never reach the pod"
    assert base64.b64encode(logo.read_bytes()).decode() not in text, "file contents never enter the values"
    files = read_branding(ROOT, settings.hub.branding)
    maps = [manifests.branding_config_map("jhub", f) for f in files]
    assert base64.b64decode(maps[0]["binaryData"]["logo.png"]) == logo.read_bytes()
    assert base64.b64decode(maps[1]["binaryData"]["favicon.ico"]) == icon.read_bytes()
    assert "extraVolumes" not in values()["hub"], "no branding files, no volume"


def test_user_names_are_normalized_like_jupyterhub_does():
    """JupyterHub lowercases every user name: `Alice.Smith` in the config is the account `alice.smith`."""
    from components.jupyterhub.auth_values import NATIVE_PASSWORDS_ENV, secret_env

    settings = settings_of(config(hub={"adminUsers": ["Alice.Smith", "admin"]}))
    auth = values_of(settings)["custom"]["jhub"]["auth"]
    assert auth["adminUsers"] == ["admin", "alice.smith"]
    passwords = json.loads(secret_env(settings.auth, settings.portal)[NATIVE_PASSWORDS_ENV])
    assert sorted(passwords) == ["admin", "alice.smith"]
    oidc = settings_of(config(auth={**AUTH["oidc"], "allowedUsers": ["Bob", "bob", "carol"]}))
    assert values_of(oidc)["custom"]["jhub"]["auth"]["allowedUsers"] == ["bob", "carol"]


def test_ldap_lookup_names_the_attribute_that_builds_the_dn():
    """ldapauthenticator's lookup_dn_user_dn_attribute is None unless set: with lookupDn nobody could sign in."""
    ldap = values(auth=AUTH["ldap"])["custom"]["jhub"]["auth"]["ldap"]
    assert ldap["lookupDn"] is True and ldap["userDnAttribute"] == ldap["userAttribute"] == "uid"
    ad = {**AUTH["ldap"]["ldap"], "userAttribute": "sAMAccountName"}
    assert values(auth={"mode": "ldap", "ldap": ad})["custom"]["jhub"]["auth"]["ldap"]["userDnAttribute"] == \
        "sAMAccountName"
    explicit = {**AUTH["ldap"]["ldap"], "userDnAttribute": "cn"}
    assert values(auth={"mode": "ldap", "ldap": explicit})["custom"]["jhub"]["auth"]["ldap"]["userDnAttribute"] == "cn"
