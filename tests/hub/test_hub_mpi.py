"""Per-user MPI namespaces, made by the hub at spawn time through kubespawner's own client and code path,
against the recorded-JSON Kubernetes API (hubtest_cluster.UserObjects)."""

import base64
import json
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from jhub_config import ConfigError, validate
from jhub_mpi import (kubeconfig_secret_manifest, namespace_manifest, pod_stopper_binding_manifest, quota_hard,
                      resource_quota_manifest, role_binding_manifest, service_account_manifest, user_namespace)
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


@pytest.mark.parametrize("with_portal", [False, True])
@pytest.mark.asyncio
async def test_every_call_the_hub_makes_is_allowed_by_the_hub_role_alone(kube_api, ca_file, with_portal):
    """The hub's own rights (components/mpi/rbac.hub_role, plus the chart's Role on Secrets in its namespace)
    cover each request it sends, `bind` on each ClusterRole it binds included; nothing more is needed."""
    extra = {"portalPodStopper": STOPPER} if with_portal else {}
    store, c = setup(kube_api, jhub_cfg(mpi=mpi_cfg(ca_file, **extra)))
    for _ in range(2):
        await spawn_until_pod(new_spawner(c, "dave"), {"profile": CPU_SLUG})
    rules = rbac.hub_role("jhub", portal_enabled=with_portal)["rules"]
    chart_role = [{"apiGroups": [""], "resources": ["pods", "persistentvolumeclaims", "secrets", "services"],
                   "verbs": ["get", "watch", "list", "create", "delete"]}]
    verbs = {"POST": "create", "PUT": "update", "DELETE": "delete", "GET": "get"}
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
