"""Per-user MPI namespaces, made by the hub at spawn time through kubespawner's own client and code path,
against the recorded-JSON Kubernetes API (hubtest_cluster.UserObjects)."""

import base64
import json
import logging
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from jhub_config import ConfigError, validate
from jhub_mpi import (kubeconfig_secret_manifest, namespace_manifest, pod_stopper_binding_manifest,
                      pull_secret_manifest, quota_hard, resource_quota_manifest, role_binding_manifest,
                      service_account_manifest, user_namespace)
from jhub_profiles import CPU_SLUG
from jhub_spawn_check import SpawnRefused
from hubtest_cluster import UserObjects, standard_cluster
from hubtest_configs import configured, jhub_cfg, new_spawner, spawn_until_pod

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from components.mpi import rbac  # noqa: E402  (the ClusterRoles the program registers)
from components.portal import manifests as portal_manifests  # noqa: E402

TOKEN = "portal-secret-token-123"
STOPPER = rbac.portal_pod_stopper("jhub", True)  # custom.jhub.mpi.portalPodStopper as the program sets it
CA = b"-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"


def mpi_cfg(ca_file, **extra):
    return {"enabled": True, "userClusterRole": rbac.user_role_name("jhub"), "caFile": str(ca_file),
            "quotaDefaults": {"cpu": 4, "memoryGiB": 16, "gpus": 0, "pods": 10}, "tokenSeconds": 3600, **extra}


@pytest.fixture
def ca_file(tmp_path):
    path = tmp_path / "ca.crt"
    path.write_bytes(CA)
    return path


def setup(kube_api, cfg):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = standard_cluster()
    store = UserObjects(kube_api)
    c = configured(cfg, kube_api.url, env={"JHUB_PORTAL_TOKEN": TOKEN})
    c.KubeSpawner.namespace = "jhub"
    return store, c


@pytest.mark.asyncio
async def test_spawn_makes_the_users_namespace_account_binding_quota_and_kubeconfig(kube_api, ca_file):
    store, c = setup(kube_api, jhub_cfg(mpi=mpi_cfg(ca_file)))
    got = await spawn_until_pod(new_spawner(c, "Alice.Smith"), {"profile": CPU_SLUG})
    ns = "jhub-u-alice-smith---2ece8250"
    namespace = store.objects[("", "namespaces", ns)]
    assert namespace["metadata"]["labels"]["jhub.io/user-namespace"] == "true"  # the portal collector's selector
    assert namespace["metadata"]["annotations"]["hub.jupyter.org/username"] == "Alice.Smith"
    assert (ns, "serviceaccounts", "jhub-user") in store.objects
    binding = store.objects[(ns, "rolebindings", "jhub-user")]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "jhub-jhub-mpi-user"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "jhub-user", "namespace": ns}]
    quota = store.objects[(ns, "resourcequotas", "jhub-user-quota")]
    assert quota["spec"]["hard"] == {"limits.cpu": "4", "limits.memory": "16384Mi", "pods": "10",
                                     "requests.cpu": "4", "requests.memory": "16384Mi", "requests.nvidia.com/gpu": "0"}
    assert store.tokens == [(ns, "jhub-user", 3600, f"token-{ns}-jhub-user-0")]
    secret = store.objects[("jhub", "secrets", "jhub-mpi-alice-smith---2ece8250")]
    config = yaml.safe_load(secret["stringData"]["config"])
    assert config["contexts"][0]["context"]["namespace"] == ns
    assert config["users"][0]["user"]["token"] == f"token-{ns}-jhub-user-0"
    assert base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]) == CA
    assert config["clusters"][0]["cluster"]["server"] == "https://kubernetes.default.svc"
    # the notebook pod mounts it and kubectl finds it through KUBECONFIG
    volume = next(v for v in got["spec"]["volumes"] if v["name"] == "jhub-mpi-kubeconfig")
    assert volume["secret"]["secretName"] == "jhub-mpi-alice-smith---2ece8250"
    container = got["spec"]["containers"][0]
    assert {"name": "KUBECONFIG", "value": "/etc/jhub/kube/config"} in container["env"]
    assert {"name": "jhub-mpi-kubeconfig", "mountPath": "/etc/jhub/kube", "readOnly": True} in container["volumeMounts"]
    # the token never reaches the pod spec itself
    assert "token-" not in json.dumps(got)


@pytest.mark.asyncio
async def test_second_start_keeps_the_objects_renews_the_token_and_takes_the_new_portal_limits(
        kube_api, server, ca_file, monkeypatch):
    monkeypatch.setenv("JHUB_PORTAL_TOKEN", TOKEN)
    limits = {"cpu": 8, "memoryGiB": 32, "gpus": None}
    server.route("GET", "/api/limits/*", lambda req: (200, {"user": "bob", "limits": dict(limits), "used": {},
                                                            "remaining": {"gpuHours": None}}))
    portal = {"enabled": True, "url": server.url, "tokenEnv": "JHUB_PORTAL_TOKEN", "timeoutSeconds": 2}
    store, c = setup(kube_api, jhub_cfg(mpi=mpi_cfg(ca_file), portal=portal))
    await spawn_until_pod(new_spawner(c, "bob"), {"profile": CPU_SLUG})
    assert store.objects[("jhub-u-bob", "resourcequotas", "jhub-user-quota")]["spec"]["hard"]["limits.cpu"] == "8"
    limits["cpu"] = 12
    spawner = new_spawner(c, "bob")
    got = await spawn_until_pod(spawner, {"profile": CPU_SLUG})
    hard = store.objects[("jhub-u-bob", "resourcequotas", "jhub-user-quota")]["spec"]["hard"]
    assert hard["limits.cpu"] == "12" and hard["limits.memory"] == "32768Mi"
    assert hard["requests.nvidia.com/gpu"] == "0"  # the portal sets no GPU limit: the default applies
    config = yaml.safe_load(store.objects[("jhub", "secrets", "jhub-mpi-bob")]["stringData"]["config"])
    assert config["users"][0]["user"]["token"] == "token-jhub-u-bob-jhub-user-1"  # a fresh token
    assert len(store.of("namespaces")) == 2 and len(store.of("rolebindings")) == 1  # jhub and jhub-u-bob
    # the portal was asked once per start: the quota reuses the spawn check's answer
    assert len([r for r in server.requests if r["path"] == "/api/limits/bob"]) == 2
    assert [v["name"] for v in got["spec"]["volumes"]].count("jhub-mpi-kubeconfig") == 1


@pytest.mark.asyncio
async def test_with_the_portal_the_users_namespace_lets_the_portal_stop_pods_there(kube_api, ca_file):
    store, c = setup(kube_api, jhub_cfg(mpi=mpi_cfg(ca_file, portalPodStopper=STOPPER)))
    for _ in range(2):  # the second start keeps the binding (409: it is there)
        await spawn_until_pod(new_spawner(c, "erin"), {"profile": CPU_SLUG})
    stopper_role = portal_manifests.pod_stopper_role("jhub")  # the ClusterRole components/portal registers
    binding = store.objects[("jhub-u-erin", "rolebindings", stopper_role["metadata"]["name"])]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "jhub-jhub-portal-pod-stopper"}
    portal_account = portal_manifests.service_account("jhub")["metadata"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": portal_account["name"],
                                    "namespace": portal_account["namespace"]}]
    assert binding["metadata"]["annotations"]["hub.jupyter.org/username"] == "erin"
    assert sorted(k[2] for k in store.of("rolebindings")) == ["jhub-jhub-portal-pod-stopper", "jhub-user"]


def test_the_pod_stopper_is_all_three_names_or_none():
    assert validate(jhub_cfg())["mpi"]["portalPodStopper"] == {"clusterRole": "", "serviceAccount": "",
                                                               "namespace": ""}
    assert pod_stopper_binding_manifest(validate(jhub_cfg())["mpi"], "jhub-u-x", "x") is None
    with pytest.raises(ConfigError, match=r"custom.jhub.mpi.portalPodStopper: set clusterRole, serviceAccount "
                                          r"and namespace together, or none of them \(missing: namespace\)"):
        validate(jhub_cfg(mpi={"portalPodStopper": {"clusterRole": "x", "serviceAccount": "portal"}}))
    with pytest.raises(ConfigError, match=r"custom.jhub.mpi.portalPodStopper.serviceAccount: 'Portal!' is not valid"):
        validate(jhub_cfg(mpi={"portalPodStopper": {**STOPPER, "serviceAccount": "Portal!"}}))


@pytest.mark.asyncio
async def test_a_refused_spawn_creates_nothing(kube_api, ca_file):
    store, c = setup(kube_api, jhub_cfg(mpi=mpi_cfg(ca_file)))
    with pytest.raises(SpawnRefused):
        await spawn_until_pod(new_spawner(c, "carol"), {"profile": "gpu-h100"})
    assert store.created() == {}


def _allowed(rules, verb, group, resource, name):
    return any(verb in r["verbs"] and group in r["apiGroups"] and resource in r["resources"]
               and (not r.get("resourceNames") or name in r["resourceNames"]) for r in rules)


@pytest.mark.parametrize("with_portal,with_pull", [(False, False), (True, False), (True, True)],
                         ids=["plain", "portal", "portal-and-pull-secret"])
@pytest.mark.asyncio
async def test_every_call_the_hub_makes_is_allowed_by_the_hub_role_alone(kube_api, ca_file, with_portal, with_pull):
    """The hub's own rights (components/mpi/rbac.hub_role, plus the chart's Role on Secrets in its namespace)
    cover each request it sends, `bind` on each ClusterRole it binds included; nothing more is needed."""
    extra = {"portalPodStopper": STOPPER} if with_portal else {}
    if with_pull:
        extra["pullSecret"] = {"source": SOURCE, "name": rbac.PULL_SECRET_NAME}
    store, c = setup(kube_api, jhub_cfg(mpi=mpi_cfg(ca_file, **extra)))
    if with_pull:
        store.add("jhub", "secrets", source_secret())
        store.add("", "namespaces", namespace_manifest({"namespacePrefix": "jhub-u-",
                                                        "namespaceLabel": admission.NAMESPACE_LABEL}, "dave"))
        store.add("jhub-u-dave", "serviceaccounts", default_account("jhub-u-dave"))  # patched, not created
    for _ in range(2):
        await spawn_until_pod(new_spawner(c, "dave"), {"profile": CPU_SLUG})
    rules = rbac.hub_role("jhub", portal_enabled=with_portal, pull_secret=with_pull)["rules"]
    chart_role = [{"apiGroups": [""], "resources": ["pods", "persistentvolumeclaims", "secrets", "services"],
                   "verbs": ["get", "watch", "list", "create", "delete"]}]
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "GET": "get"}
    checked, bound = 0, set()
    for request in kube_api.requests:
        path = request["path"]
        if path in ("/api/v1/nodes", "/api/v1/pods"):
            continue  # the cluster reader ClusterRole (components/jupyterhub/manifests.py)
        parts = path.strip("/").split("/")
        group = "" if parts[0] == "api" else parts[1]
        parts = parts[2:] if parts[0] == "api" else parts[3:]
        verb = verbs[request["method"]]
        if len(parts) <= 2:
            resource, name, namespace = "namespaces", (parts[1] if len(parts) == 2 else ""), ""
        else:
            namespace, resource = parts[1], parts[2]
            name = parts[3] if len(parts) > 3 else json.loads(request["body"])["metadata"]["name"]
            if parts[4:] == ["token"]:
                resource = "serviceaccounts/token"
        allowed = _allowed(rules, verb, group, resource, name) or (
            namespace == "jhub" and _allowed(chart_role, verb, group, resource, name))
        assert allowed, f"{request['method']} {path} is not allowed to the hub"
        if resource == "rolebindings" and verb == "create":  # RBAC's escalation check: bind on the role
            role = json.loads(request["body"])["roleRef"]["name"]
            assert _allowed(rules, "bind", "rbac.authorization.k8s.io", "clusterroles", role), role
            bound.add(role)
        checked += 1
    assert checked >= 10
    assert bound == {"jhub-jhub-mpi-user"} | ({"jhub-jhub-portal-pod-stopper"} if with_portal else set())


def _manifests():
    cfg = {"namespacePrefix": "jhub-u-", "namespaceLabel": "jhub.io/user-namespace", "serviceAccount": "jhub-user",
           "userClusterRole": "jhub-jhub-mpi-user", "quotaName": "jhub-user-quota", "portalPodStopper": STOPPER}
    ns = user_namespace("jhub-u-", "Élodie.O'Brien")
    hard = quota_hard({"cpu": 2.5, "memoryGiB": 7.5, "gpus": 2}, {"pods": 5}, "nvidia.com/gpu")
    return [namespace_manifest(cfg, "Élodie.O'Brien"), service_account_manifest(cfg, ns, "Élodie.O'Brien"),
            role_binding_manifest(cfg, ns, "Élodie.O'Brien"), resource_quota_manifest(cfg, ns, "Élodie.O'Brien", hard),
            kubeconfig_secret_manifest(cfg, "jhub", "Élodie.O'Brien", "apiVersion: v1\n"),
            pod_stopper_binding_manifest(cfg, ns, "Élodie.O'Brien")]


@pytest.mark.parametrize("manifest", _manifests(), ids=lambda m: f"{m['kind']}-{m['metadata']['name']}")
def test_manifests_the_hub_sends_are_valid(manifest):
    kubernetes_validate.validate(manifest, "1.32", strict=True)


def test_quota_from_limits_and_defaults():
    assert quota_hard({"cpu": 2.5, "memoryGiB": 7.5, "gpus": 2}, {"pods": 5}, "nvidia.com/gpu") == {
        "limits.cpu": "2.5", "limits.memory": "7680Mi", "pods": "5", "requests.cpu": "2.5",
        "requests.memory": "7680Mi", "requests.nvidia.com/gpu": "2"}
    assert quota_hard(None, {"cpu": None, "memoryGiB": None, "gpus": None, "pods": None}, "nvidia.com/gpu") == {}


def test_namespace_names_are_dns_labels_for_any_user_name():
    for name in ("alice", "Alice.Smith", "bob_x", "a" * 200, "日本語", "-x-"):
        ns = user_namespace("jhub-u-", name)
        assert len(ns) <= 63 and ns == ns.lower() and ns.startswith("jhub-u-")
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, "1.32",
                                     strict=True)
    assert user_namespace("jhub-u-", "Alice.Smith") != user_namespace("jhub-u-", "alice-smith")


@pytest.mark.parametrize("mpi,words", [
    ({"enabled": True}, "custom.jhub.mpi.userClusterRole: required when mpi.enabled is true"),
    ({"enabled": True, "userClusterRole": "r", "quotaDefaults": {"cpu": -1}}, "custom.jhub.mpi.quotaDefaults.cpu: must be"),
    ({"enabled": True, "userClusterRole": "r", "tokenSeconds": 60}, "custom.jhub.mpi.tokenSeconds: must be an integer >= 600"),
    ({"enabled": True, "userClusterRole": "r", "namespacePrefix": "Jhub"}, "custom.jhub.mpi.namespacePrefix:"),
])
def test_bad_hub_mpi_config_is_refused(mpi, words):
    from jhub_config import ConfigError, validate

    with pytest.raises(ConfigError, match=words.replace(".", r"\.").replace("(", r"\(")):
        validate(jhub_cfg(mpi=mpi))


@pytest.mark.asyncio
async def test_a_cluster_that_refuses_the_hub_stops_the_spawn_with_a_clear_message(kube_api, ca_file, caplog):
    store, c = setup(kube_api, jhub_cfg(mpi=mpi_cfg(ca_file)))
    kube_api.route("POST", "/api/v1/namespaces", lambda req: (403, {"kind": "Status", "code": 403,
                                                                     "reason": "Forbidden", "message": "nope"}))
    with pytest.raises(Exception) as failed:
        await spawn_until_pod(new_spawner(c, "erin"), {"profile": CPU_SLUG})
    message = failed.value.jupyterhub_message
    assert message.startswith("Your MPI namespace jhub-u-erin could not be set up (HTTP 403 Forbidden)")
    assert "cannot set up MPI namespace jhub-u-erin for erin: HTTP 403" in caplog.text


@pytest.mark.asyncio
async def test_a_missing_ca_file_stops_the_spawn_and_leaks_no_token(kube_api, tmp_path, caplog):
    store, c = setup(kube_api, jhub_cfg(mpi=mpi_cfg(tmp_path / "absent.crt")))
    with pytest.raises(Exception) as failed:
        await spawn_until_pod(new_spawner(c, "frank"), {"profile": CPU_SLUG})
    assert "FileNotFoundError" in failed.value.jupyterhub_message
    assert store.created() == {} and store.tokens == []  # nothing made, no token minted
    assert "token-" not in caplog.text and "token-" not in failed.value.jupyterhub_message


# -- the build registry's pull Secret in users' namespaces ------------------------------------------------------

from components.jupyterhub.manifests import registry_login  # noqa: E402  (what the program puts in the source)
from components.mpi import admission  # noqa: E402
from tests.support.vap import refusals, request as admission_request  # noqa: E402

PULL_PASSWORD = "pull-s3cret-pw"
SOURCE = "registry-pull-secret-0a1b2c3d"  # Pulumi's name for the hub namespace's Secret (a new login: a new name)


def pull_cfg(ca_file, source=SOURCE):
    return mpi_cfg(ca_file, pullSecret={"source": source, "name": rbac.PULL_SECRET_NAME})


def source_secret(name=SOURCE, password=PULL_PASSWORD, kind="kubernetes.io/dockerconfigjson"):
    login = registry_login("harbor.local", "robot", password)  # as the API server keeps it: data, base64
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "jhub"}, "type": kind,
            "data": {".dockerconfigjson": base64.b64encode(login.encode()).decode()}}


def default_account(ns, *pull):
    """The `default` ServiceAccount as the ServiceAccount controller makes it (and an admin may have edited)."""
    body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}
    if pull:
        body["imagePullSecrets"] = [{"name": n} for n in pull]
    return body


def pull_writes(store, ns):
    """Writes the hub made to the pull Secret and the ServiceAccounts of `ns`."""
    return [(m, k[1], k[2]) for m, k in store.writes if k[0] == ns and k[1] in ("secrets", "serviceaccounts")
            and m != "ADD"]


@pytest.mark.asyncio
async def test_the_pull_secret_is_copied_and_every_pod_there_pulls_with_it(kube_api, ca_file, caplog):
    caplog.set_level(logging.INFO)
    store, c = setup(kube_api, jhub_cfg(mpi=pull_cfg(ca_file)))
    store.add("jhub", "secrets", source_secret())
    store.add("", "namespaces", namespace_manifest({"namespacePrefix": "jhub-u-",
                                                    "namespaceLabel": admission.NAMESPACE_LABEL}, "gina"))
    store.add("jhub-u-gina", "serviceaccounts", default_account("jhub-u-gina", "site-mirror"))
    await spawn_until_pod(new_spawner(c, "gina"), {"profile": CPU_SLUG})
    copy = store.objects[("jhub-u-gina", "secrets", rbac.PULL_SECRET_NAME)]
    assert copy["type"] == "kubernetes.io/dockerconfigjson"
    assert copy["data"] == store.objects[("jhub", "secrets", SOURCE)]["data"]  # the same login, as it is
    assert copy["metadata"]["annotations"]["hub.jupyter.org/username"] == "gina"
    user_sa = store.objects[("jhub-u-gina", "serviceaccounts", "jhub-user")]
    assert user_sa["imagePullSecrets"] == [{"name": rbac.PULL_SECRET_NAME}]
    # `default` (what an MPIJob's pods run as unless the template says): the admin's entry is kept
    assert store.objects[("jhub-u-gina", "serviceaccounts", "default")]["imagePullSecrets"] == [
        {"name": "site-mirror"}, {"name": rbac.PULL_SECRET_NAME}]
    assert pull_writes(store, "jhub-u-gina") == [("POST", "serviceaccounts", "jhub-user"),
                                                 ("POST", "secrets", rbac.PULL_SECRET_NAME),
                                                 ("PATCH", "serviceaccounts", "default")]
    assert "registry pull Secret jhub-registry-pull in jhub-u-gina created; ServiceAccounts updated: default" \
        in caplog.text
    login = source_secret()["data"][".dockerconfigjson"]
    assert PULL_PASSWORD not in caplog.text and login not in caplog.text


@pytest.mark.asyncio
async def test_a_second_start_changes_nothing_and_a_new_login_is_copied_at_the_next(kube_api, ca_file):
    store, c = setup(kube_api, jhub_cfg(mpi=pull_cfg(ca_file)))
    store.add("jhub", "secrets", source_secret())
    await spawn_until_pod(new_spawner(c, "hank"), {"profile": CPU_SLUG})
    # the namespace was new: the hub made `default` itself, with the Secret (the controller then keeps it)
    assert store.objects[("jhub-u-hank", "serviceaccounts", "default")]["imagePullSecrets"] == [
        {"name": rbac.PULL_SECRET_NAME}]
    before = len(store.writes)
    await spawn_until_pod(new_spawner(c, "hank"), {"profile": CPU_SLUG})
    assert not [w for w in store.writes[before:] if w[1][0] == "jhub-u-hank" and w[1][1] != "resourcequotas"]
    # a changed password: the program makes a new source Secret and the hub restarts with its name
    store.add("jhub", "secrets", source_secret("registry-pull-secret-9f8e7d6c", "rotated-pw"))
    c2 = configured(jhub_cfg(mpi=pull_cfg(ca_file, "registry-pull-secret-9f8e7d6c")), kube_api.url,
                    env={"JHUB_PORTAL_TOKEN": TOKEN})
    c2.KubeSpawner.namespace = "jhub"
    old_version = store.objects[("jhub-u-hank", "secrets", rbac.PULL_SECRET_NAME)]["metadata"]["resourceVersion"]
    mark = len(store.writes)
    await spawn_until_pod(new_spawner(c2, "hank"), {"profile": CPU_SLUG})
    copy = store.objects[("jhub-u-hank", "secrets", rbac.PULL_SECRET_NAME)]
    assert copy["data"] == store.objects[("jhub", "secrets", "registry-pull-secret-9f8e7d6c")]["data"]
    assert [w for w in store.writes[mark:] if w[1][0] == "jhub-u-hank" and w[1][1] != "resourcequotas"] == [
        ("PUT", ("jhub-u-hank", "secrets", rbac.PULL_SECRET_NAME))]  # the Secret only: the accounts name it already
    put = [r for r in kube_api.requests if r["method"] == "PUT" and r["path"].endswith("/jhub-registry-pull")]
    assert json.loads(put[-1]["body"])["metadata"]["resourceVersion"] == old_version  # no lost update


@pytest.mark.parametrize("present,kind,words", [
    (False, "kubernetes.io/dockerconfigjson", f"the registry pull Secret jhub/{SOURCE} is missing"),
    (True, "Opaque", f"the registry pull Secret jhub/{SOURCE} is not a kubernetes.io/dockerconfigjson Secret"),
])
@pytest.mark.asyncio
async def test_a_missing_or_wrong_source_stops_the_spawn_naming_it(kube_api, ca_file, caplog, present, kind, words):
    store, c = setup(kube_api, jhub_cfg(mpi=pull_cfg(ca_file)))
    if present:
        store.add("jhub", "secrets", source_secret(kind=kind))
    with pytest.raises(Exception) as failed:
        await spawn_until_pod(new_spawner(c, "ivy"), {"profile": CPU_SLUG})
    assert failed.value.jupyterhub_message.startswith(f"Your MPI namespace jhub-u-ivy could not be set up ({words}")
    assert words in caplog.text
    assert PULL_PASSWORD not in caplog.text and PULL_PASSWORD not in failed.value.jupyterhub_message
    assert ("jhub-u-ivy", "secrets", rbac.PULL_SECRET_NAME) not in store.objects


def test_without_a_source_the_hub_copies_nothing():
    cleaned = validate(jhub_cfg())["mpi"]
    assert cleaned["pullSecret"] == {"source": "", "name": "jhub-registry-pull"}
    assert "imagePullSecrets" not in service_account_manifest(cleaned, "jhub-u-x", "x")
    with pytest.raises(ConfigError, match=r"custom\.jhub\.mpi\.pullSecret\.source: 'Bad_Name' is not valid"):
        validate(jhub_cfg(mpi={"pullSecret": {"source": "Bad_Name"}}))


@pytest.mark.asyncio
async def test_every_pull_secret_write_passes_the_guard_and_the_hub_role_allows_it(kube_api, ca_file):
    """Each request the hub sends for the copy: allowed by hub_role(pull_secret=True) (plus the chart's Role in
    its own namespace), and admitted by the ValidatingAdmissionPolicy that guards the rights."""
    store, c = setup(kube_api, jhub_cfg(mpi=pull_cfg(ca_file)))
    store.add("jhub", "secrets", source_secret())
    store.add("", "namespaces", namespace_manifest({"namespacePrefix": "jhub-u-",
                                                    "namespaceLabel": admission.NAMESPACE_LABEL}, "jo"))
    store.add("jhub-u-jo", "serviceaccounts", default_account("jhub-u-jo"))
    await spawn_until_pod(new_spawner(c, "jo"), {"profile": CPU_SLUG})
    store.add("jhub", "secrets", source_secret("registry-pull-secret-new", "rotated-pw"))
    c2 = configured(jhub_cfg(mpi=pull_cfg(ca_file, "registry-pull-secret-new")), kube_api.url,
                    env={"JHUB_PORTAL_TOKEN": TOKEN})
    c2.KubeSpawner.namespace = "jhub"
    await spawn_until_pod(new_spawner(c2, "jo"), {"profile": CPU_SLUG})
    rules = rbac.hub_role("jhub", pull_secret=True)["rules"]
    chart_role = [{"apiGroups": [""], "resources": ["pods", "persistentvolumeclaims", "secrets", "services"],
                   "verbs": ["get", "watch", "list", "create", "delete"]}]
    guard = admission.pull_secret_policy("jhub")
    namespace = store.objects[("", "namespaces", "jhub-u-jo")]
    seen = set()
    for r in kube_api.requests:
        parts = r["path"].strip("/").split("/")
        if parts[:4] != ["api", "v1", "namespaces", parts[3] if len(parts) > 3 else ""] or len(parts) < 5:
            continue
        ns, resource = parts[3], parts[4]
        if resource not in ("secrets", "serviceaccounts") or parts[6:] == ["token"]:
            continue
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "GET": "get", "DELETE": "delete"}[r["method"]]
        name = parts[5] if len(parts) > 5 else json.loads(r["body"])["metadata"]["name"]
        assert _allowed(rules, verb, "", resource, name) or (
            ns == "jhub" and _allowed(chart_role, verb, "", resource, name)), f"{r['method']} {r['path']}"
        if verb in ("create", "update", "patch") and ns != "jhub":
            obj = store.objects[(ns, resource, name)]  # what the write left (a patch merged)
            operation = "CREATE" if verb == "create" else "UPDATE"
            req = admission_request(admission.hub_username("jhub"), operation, resource, obj, namespace)
            got = refusals(guard, req, obj, namespace)
            # creating a ServiceAccount is a right the hub had before; the guard is on Secrets and SA updates
            expected = None if (operation, resource) == ("CREATE", "serviceaccounts") else []
            assert got == expected, (r["method"], r["path"], got)
            seen.add((verb, resource, name))
    assert {("create", "secrets", "jhub-registry-pull"), ("update", "secrets", "jhub-registry-pull"),
            ("create", "serviceaccounts", "jhub-user"), ("patch", "serviceaccounts", "default")} <= seen


def test_the_pull_secret_copy_is_a_valid_secret():
    cfg = {"serviceAccount": "jhub-user", "pullSecret": {"source": SOURCE, "name": rbac.PULL_SECRET_NAME}}
    for manifest in (pull_secret_manifest(cfg, "jhub-u-x", "x", source_secret()["data"]),
                     service_account_manifest(cfg, "jhub-u-x", "x")):
        kubernetes_validate.validate(manifest, "1.32", strict=True)
